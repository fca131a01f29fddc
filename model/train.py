"""Trainer: fit EnhancedRL on a pinned Delta snapshot of `enhanced_state`, via Petastorm.

    mtf train --ds 2026-01-03            # or: python -m model.train --ds ...

1. pins the snapshot: Delta version + exact Parquet files of the train split for the
   `data.train_window_days` days ending at ds (jobs/snapshot.py);
2. trains `rl.steps` gradient steps over Petastorm epochs (progress bar, namespaced
   metrics every `log_every` steps to `train_metrics.jsonl`);
3. writes the candidate's artifact folder atomically: `checkpoint.pt` (every network,
   target, optimizer, step + config, seed, git SHA, data versions), `actor.pt`
   (TorchScript) + its sha256, `snapshot.json`, `train_metrics.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow  # noqa: F401  (before torch)
import torch
from tqdm import tqdm

from jobs.snapshot import Snapshot
from jobs.tables import validate_ds
from model.enhanced_rl import EnhancedRL
from model.export import export_actor
from model.loader import EnhancedStateLoader
from mtf.config import PipelineConfig, load_config
from mtf.provenance import artifact_dir, git_sha, model_version

log = logging.getLogger("model.train")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pin_snapshot(cfg: PipelineConfig, ds: str) -> tuple[Snapshot, dict[str, int]]:
    """Resolve the training snapshot with a short-lived Spark session."""
    from jobs.snapshot import resolve_snapshot
    from jobs.spark import get_spark
    from jobs.tables import table_version

    spark = get_spark(cfg, f"mtf-train-pin-{ds}")
    db = cfg.storage.database
    snap = resolve_snapshot(spark, db, "enhanced_state", ds, cfg.data.train_window_days)
    versions = {snap.table: snap.version,
                f"{db}.user_state": table_version(spark, db, "user_state")}
    spark.stop()
    return snap, versions


def train(cfg: PipelineConfig, ds: str, snap: Snapshot, data_versions: dict[str, int],
          out_dir: Path, *, progress: bool = True, log_every: int = 50) -> dict[str, float]:
    """Train and write the artifact folder `out_dir` (replaced atomically)."""
    seed_everything(cfg.rl.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    learner = EnhancedRL(cfg.rl)
    loader = EnhancedStateLoader(files=snap.files, batch_size=cfg.rl.batch_size,
                                 seed=cfg.data.shuffle_seed + cfg.rl.seed,
                                 workers=cfg.data.loader_workers, expected_rows=snap.rows)
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    metrics_path = tmp / "train_metrics.jsonl"
    step, epoch, t0 = 0, 0, time.perf_counter()
    last: dict[str, float] = {}
    bar = tqdm(total=cfg.rl.steps, desc=f"train {ds}", disable=not progress, file=sys.stderr,
               mininterval=2.0)
    with metrics_path.open("w") as mf:
        while step < cfg.rl.steps:
            for batch in loader.epoch(epoch):
                last = learner.update(batch)
                step += 1
                bar.update(1)
                if step % log_every == 0 or step == cfg.rl.steps:
                    last["charts/steps_per_sec"] = step / (time.perf_counter() - t0)
                    last["charts/epoch"] = epoch
                    mf.write(json.dumps({"step": step, **last}) + "\n")
                    bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in last.items()
                                     if k.startswith("losses/")})
                if step >= cfg.rl.steps:
                    break
            epoch += 1
    bar.close()
    wall = time.perf_counter() - t0
    meta = {
        "model_version": model_version(cfg.algo, ds), "algo": cfg.algo, "ds": ds,
        "level": "pair", "seed": cfg.rl.seed, "git_sha": git_sha(),
        "data_versions": data_versions, "snapshot_rows": snap.rows, "steps": step,
        "epochs": epoch, "train_wall_s": wall, "final_metrics": last,
        "config": cfg.to_dict(),
    }
    torch.save({"learner": learner.state_dict(), **meta}, tmp / "checkpoint.pt")
    sha = export_actor(learner.actor, tmp / "actor.pt")
    meta["actor_sha256"] = sha
    snap.save(tmp / "snapshot.json")
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    log.info("trained %s: %d steps in %.1fs (%.1f steps/s); artifact %s",
             meta["model_version"], step, wall, step / max(wall, 1e-9), out_dir)
    return last


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.common import setup_logging

    p = argparse.ArgumentParser(description="Train EnhancedRL on a pinned Delta snapshot")
    p.add_argument("--ds", required=True, type=validate_ds)
    p.add_argument("--profile", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--snapshot", default=None, help="use this snapshot.json instead of pinning")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    cfg = load_config(args.profile, args.overrides)
    if args.snapshot:
        snap = Snapshot.load(args.snapshot)
        versions = {snap.table: snap.version}
    else:
        snap, versions = pin_snapshot(cfg, args.ds)
    log.info("snapshot %s@v%d: %d files, %d rows, days %s", snap.table, snap.version,
             len(snap.files), snap.rows, snap.days)
    train(cfg, args.ds, snap, versions, artifact_dir(cfg, args.ds),
          progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
