"""Trainer: fit EnhancedRL on a pinned Delta snapshot of `enhanced_state`, via Petastorm.

    mtf train --ds 2026-01-03            # or: python -m jobs.train --ds ...
    mtf train --ds 2026-01-03 --snapshot snapshot.json      # a pinned file list, no Spark
    mtf train --ds 2026-01-03 --warm-start <artifacts>/enhanced_rl-2026-01-02
    torchrun --nproc_per_node 2 -m jobs.train --ds 2026-01-03 --no-progress

1. pins the snapshot: Delta version + exact Parquet files of the train split for the
   `data.train_window_days` days ending at ds (store/snapshot.py);
   the batches carry the logged candidates (`cand_*`, `next_cand_*`) when the files hold
   them (model/loader.py); the learner decides whether to use them;
2. trains `rl.steps` gradient steps over Petastorm epochs (progress bar, namespaced
   metrics and the ensemble diagnostics every `rl.log_every` steps to `train_metrics.jsonl`);
3. writes the candidate's artifact folder atomically (temporary folder + rename):
   `checkpoint.pt` (every network, target, optimizer, step + config, seed, git SHA, data
   versions), `actor.pt` (TorchScript) + its sha256, `snapshot.json`,
   `train_metrics.jsonl`, `meta.json` (also: resume count, warm start, world size);
4. logs the finished run to MLflow (`tracking`; store/tracking.py) from that folder: params
   (flattened config, seed, git SHA, ds, model_version), the Delta versions read, the metric
   rows with their step, the final metrics, the actor, meta.json and snapshot.json; and
   registers the actor as the model_version's one version of `tracking.registered_model`.
   A tracking failure is a warning (`tracking.strict` makes it fail the job): the artifact
   folder and, later, policy_registry are the record.

Resume after a kill. Every `rl.checkpoint_every` steps the trainer replaces (temporary
file + `os.replace`) `<artifact>.work/state.pt`: networks, targets, optimizers, step, the
learner's generator, every rank's python / numpy / torch RNG states and loader position
(epoch + batches consumed in it) and the metrics rows so far. A restarted trainer resumes
from it when its fingerprint (ds, full config, snapshot, world size, warm-start file) is
the same, else starts fresh. The loader's order is a pure function of (seed, epoch, shard)
(model/loader.py), so the resumed run trains on the same batches in the same order and ends
with the same parameters as an uninterrupted one. The work folder is removed on success.
Warm start (`--warm-start` / `rl.warm_start`) applies to a fresh start only.

Data-parallel training: under `torchrun --nproc_per_node N -m jobs.train ...` every rank
reads its Petastorm shard (row groups index % N) of the same pinned files, takes
`rl.batch_size` lists per step (global batch N x batch_size) and averages gradients with
one all-reduce per network and step (model/distributed.py; gloo on CPU). Every rank runs
exactly `rl.steps` steps, cycling its own shard, so uneven shards never leave a rank
waiting. Rank 0 alone pins the snapshot, decides fresh / resume / warm start (broadcast to
the others), writes checkpoints (with every rank's position) and the artifact, after
checking that all replicas ended with the same parameters (their digests go to meta.json).
The snapshot needs at least N row groups.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow  # noqa: F401  (before torch)
import torch
from tqdm import tqdm

from core.artifact import Artifact, model_version
from core.checksum import file_sha256
from model import distributed as dd
from model.enhanced_rl import EnhancedRL, NonFiniteError
from model.export import export_actor
from model.loader import EnhancedStateLoader
from pipeline.config import PipelineConfig
from pipeline.entry import parse_job_args
from pipeline.provenance import artifact_dir, git_sha
from store.snapshot import Snapshot
from store.tracking import TrainingRecord, flatten, guarded, metric_rows, open_tracker

log = logging.getLogger("jobs.train")

STATE_FILE = "state.pt"
NETWORKS = ("actor", "critic", "actor_target", "critic_target")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """This process's global RNG states (python, numpy, torch), as plain values and tensors
    only, so that checkpoints load with torch.load(weights_only=True)."""
    name, key, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {"python": random.getstate(),
            "numpy": (str(name), [int(k) for k in key], int(pos), int(has_gauss),
                      float(gauss)),
            "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])


@dataclass
class Position:
    """Where a rank is in its data: the epoch and the batches of it already trained on."""

    epoch: int = 0
    batches: int = 0


def work_dir(out_dir: Path) -> Path:
    """The run's checkpoint folder, next to the artifact folder."""
    return out_dir.with_name(out_dir.name + ".work")


def warm_start_file(path: str) -> Path:
    """An artifact folder or its checkpoint.pt -> the checkpoint file."""
    p = Path(path)
    return Artifact(p).checkpoint if p.is_dir() else p


def run_fingerprint(cfg: PipelineConfig, ds: str, snap: Snapshot, world: int,
                    warm_sha256: str | None) -> str:
    """What a checkpoint must match to be resumed: same day, config (where runs are tracked
    aside), data, world size and warm-start file (its content, not just its path)."""
    config = {k: v for k, v in cfg.to_dict().items() if k != "tracking"}
    key = {"ds": ds, "config": config, "snapshot": asdict(snap), "world": world,
           "warm_start_sha256": warm_sha256}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def pin_snapshot(cfg: PipelineConfig, ds: str) -> tuple[Snapshot, dict[str, int]]:
    """Resolve the training snapshot with a short-lived Spark session."""
    from store.snapshot import resolve_snapshot
    from store.spark import get_spark
    from store.tables import table_version

    spark = get_spark(cfg, f"mtf-train-pin-{ds}")
    db = cfg.storage.database
    snap = resolve_snapshot(spark, db, "enhanced_state", ds, cfg.data.train_window_days)
    versions = {snap.table: snap.version,
                f"{db}.user_state": table_version(spark, db, "user_state")}
    spark.stop()
    return snap, versions


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, fsync, then rename over `path` (never half-written)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def initial_state(cfg: PipelineConfig, ds: str, snap: Snapshot, world: int, work: Path
                  ) -> dict[str, Any]:
    """Rank 0: resume from `work` if its checkpoint matches this run, else start fresh
    (from the warm-start networks if configured) with an empty `work` folder."""
    warm: dict[str, Any] | None = None
    if cfg.rl.warm_start:
        path = warm_start_file(cfg.rl.warm_start)
        warm = {"path": str(path.resolve()), "sha256": file_sha256(path)}
    fingerprint = run_fingerprint(cfg, ds, snap, world, warm and warm["sha256"])
    state_path = work / STATE_FILE
    if state_path.exists():
        try:
            ckpt = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as e:  # a checkpoint we cannot read is no reason to fail the day
            log.warning("unreadable checkpoint %s (%s): starting fresh", state_path, e)
            ckpt = None
        if ckpt is not None and ckpt.get("fingerprint") == fingerprint:
            return {"kind": "resume", "fingerprint": fingerprint, "checkpoint": ckpt,
                    "warm_start": ckpt["warm_start"]}
        if ckpt is not None:
            log.info("checkpoint %s is of another run (ds, config, snapshot, world size or "
                     "warm start differ): starting fresh", state_path)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    networks = None
    if warm is not None:
        src = torch.load(warm["path"], map_location="cpu", weights_only=True)
        networks = {k: src["learner"][k] for k in NETWORKS}
        warm["model_version"] = src.get("model_version")
    return {"kind": "fresh", "fingerprint": fingerprint, "networks": networks,
            "warm_start": warm}


def train(cfg: PipelineConfig, ds: str, snap: Snapshot, data_versions: dict[str, int],
          out_dir: Path, *, progress: bool = True, ctx: dd.DistContext | None = None
          ) -> dict[str, float]:
    """Train (resuming a matching checkpoint) and, on rank 0, write the artifact folder
    `out_dir` (replaced atomically). Returns the last step's metrics."""
    ctx = ctx or dd.DistContext()
    rl = cfg.rl
    seed_everything(rl.seed)
    learner = EnhancedRL(rl, grad_sync=dd.allreduce_mean_grads if ctx.active else None)
    loader = EnhancedStateLoader(
        files=snap.files, batch_size=rl.batch_size, seed=cfg.data.shuffle_seed + rl.seed,
        expected_rows=snap.rows,
        cur_shard=ctx.rank if ctx.active else None,
        shard_count=ctx.world if ctx.active else None)
    if ctx.is_main:
        log.info("batches of %s (candidate slots K = %s)", ", ".join(loader.columns()),
                 loader.candidate_slots())
    needs = {"cand_state": rl.actor_objective == "selection",
             "next_cand_state": rl.td_next == "selected_list"}
    lacking = [c for c, need in needs.items() if need and c not in loader.columns()]
    if lacking:
        raise ValueError(f"rl.actor_objective = {rl.actor_objective!r} / rl.td_next = "
                         f"{rl.td_next!r} need {', '.join(lacking)} in enhanced_state, which "
                         f"the snapshot's files lack (build the days with raw_candidates"
                         f"{' and data.next_candidates' if 'next_cand_state' in lacking else ''})")
    work = work_dir(out_dir)
    init = dd.broadcast(initial_state(cfg, ds, snap, ctx.world, work) if ctx.is_main
                        else None, ctx)
    pos, rows, resumed_at, wall_before = Position(), [], [], 0.0
    if init["kind"] == "resume":
        ckpt = init["checkpoint"]
        learner.load_state_dict(ckpt["learner"])
        mine = ckpt["ranks"][ctx.rank]
        pos = Position(**mine["position"])
        set_rng_state(mine["rng"])
        rows, wall_before = ckpt["metrics"], ckpt["train_wall_s"]
        resumed_at = [*ckpt["resumed_at_steps"], learner.step]
        if ctx.is_main:
            log.info("resuming %s from %s at step %d (epoch %d, batch %d; resume #%d)",
                     model_version(cfg.algo, ds), work, learner.step, pos.epoch, pos.batches,
                     len(resumed_at))
    elif init["networks"] is not None:
        learner.load_networks(init["networks"])
        if ctx.is_main:
            log.info("warm start from %s (%s)", init["warm_start"]["path"],
                     init["warm_start"]["model_version"])

    metrics_path = Artifact(work).train_metrics
    mf = None
    if ctx.is_main:  # rewrite from the checkpoint: rows logged after it are dropped
        metrics_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        mf = metrics_path.open("a")
    start_step, t0 = learner.step, time.perf_counter()

    def checkpoint() -> None:
        per_rank = dd.gather({"position": asdict(pos), "rng": rng_state()}, ctx)
        if ctx.is_main:
            save_atomic({"fingerprint": init["fingerprint"], "learner": learner.state_dict(),
                         "ranks": per_rank, "metrics": rows, "resumed_at_steps": resumed_at,
                         "warm_start": init["warm_start"],
                         "train_wall_s": wall_before + time.perf_counter() - t0},
                        work / STATE_FILE)

    step, last = learner.step, {}
    bar = tqdm(total=rl.steps, initial=step, desc=f"train {ds}", file=sys.stderr,
               disable=not (progress and ctx.is_main), mininterval=2.0)
    tenth = max(1, rl.steps // 10)
    while step < rl.steps:
        for batch in loader.epoch(pos.epoch, skip=pos.batches):
            log_now = (step + 1) % rl.log_every == 0 or step + 1 == rl.steps
            last = learner.update(batch, diagnostics=log_now)
            step, pos.batches = step + 1, pos.batches + 1
            bar.update(1)
            if not progress and ctx.is_main and step % tenth == 0:  # the log's progress line
                log.info("train %s: step %d/%d", ds, step, rl.steps)
            if log_now:
                last["charts/steps_per_sec"] = (step - start_step) / (time.perf_counter() - t0)
                last["charts/epoch"] = pos.epoch
                rows.append({"step": step, **last})
                if mf is not None:
                    mf.write(json.dumps(rows[-1]) + "\n")
                    mf.flush()
                bar.set_postfix({k.split("/")[-1]: f"{v:.3g}" for k, v in last.items()
                                 if k.startswith("losses/")})
            if rl.checkpoint_every and step % rl.checkpoint_every == 0 and step < rl.steps:
                checkpoint()
            if step >= rl.steps:
                break
        else:
            pos = Position(pos.epoch + 1, 0)
    bar.close()
    this_run = time.perf_counter() - t0
    wall = wall_before + this_run
    ends = dd.gather({"param_sha256": dd.param_digest(learner.actor, learner.critic),
                      "position": asdict(pos)}, ctx)
    if not ctx.is_main:
        return last
    assert mf is not None and ends is not None
    mf.close()
    digests = [e["param_sha256"] for e in ends]
    if len(set(digests)) != 1:
        raise RuntimeError(f"data-parallel replicas diverged: parameter digests {digests}")
    meta = {
        "model_version": model_version(cfg.algo, ds), "algo": cfg.algo, "ds": ds,
        "level": "pair", "seed": rl.seed, "git_sha": git_sha(),
        "data_versions": data_versions, "snapshot_rows": snap.rows, "steps": step,
        "epochs": pos.epoch, "train_wall_s": wall, "final_metrics": last,
        "resume_count": len(resumed_at), "resumed_at_steps": resumed_at,
        "warm_start": init["warm_start"], "world_size": ctx.world,
        "batch_size_per_rank": rl.batch_size, "replica_param_sha256": digests,
        "columns_read": list(loader.columns()), "candidate_slots": loader.candidate_slots(),
        "rank_positions": [e["position"] for e in ends],
        "config": cfg.to_dict(),
    }
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    staged = Artifact(tmp)
    torch.save({"learner": learner.state_dict(), **meta}, staged.checkpoint)
    meta["actor_sha256"] = export_actor(learner.actor, staged.actor)
    snap.save(staged.snapshot)
    shutil.copyfile(metrics_path, staged.train_metrics)
    staged.meta.write_text(json.dumps(meta, indent=1, default=str))
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    shutil.rmtree(work)
    log.info("trained %s: %d steps in %.1fs (%.1f steps/s, world %d, %d resumes); artifact %s",
             meta["model_version"], step, wall, (step - start_step) / max(this_run, 1e-9),
             ctx.world, len(resumed_at), out_dir)
    return last


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The artifact checksum of a candidate that has no artifact (its training failed)."""


def record_training_failure(cfg: PipelineConfig, ds: str, data_versions: dict[str, int],
                            reason: str) -> None:
    """A `rejected` registry row saying why the day's training failed (no artifact: empty
    uri, the sha256 of nothing); the previous policy keeps serving, and a published row of
    an earlier run of the day is left alone."""
    from store.registry import upsert_registry
    from store.spark import get_spark
    from store.tables import ensure_tables

    spark = get_spark(cfg, f"mtf-train-failed-{ds}")
    db = cfg.storage.database
    ensure_tables(spark, db)
    upsert_registry(spark, db, {
        "model_version": model_version(cfg.algo, ds), "algo": cfg.algo, "ds": ds,
        "artifact_uri": "", "artifact_sha256": EMPTY_SHA256, "level": "pair",
        "config_json": json.dumps(cfg.to_dict(), sort_keys=True, default=str),
        "seed": int(cfg.rl.seed), "git_sha": git_sha(),
        "data_versions": json.dumps(data_versions, sort_keys=True),
        "status": "rejected", "reason": f"training failed: {reason}", "updated_at_ds": ds},
        keep_published=True)
    log.error("training of %s failed, recorded as rejected: %s", model_version(cfg.algo, ds),
              reason)


def track_training(cfg: PipelineConfig, ds: str, out_dir: Path) -> TrainingRecord | None:
    """Log the finished training in the artifact folder `out_dir` to MLflow and register its
    actor (one registered version per model_version: a rerun finds it by its tag). None when
    tracking is off or failed (a warning, unless `tracking.strict`)."""
    tracker = open_tracker(cfg.tracking, cfg.storage)
    if tracker is None:
        return None
    art = Artifact(out_dir)

    def log_run() -> TrainingRecord:
        meta = json.loads(art.meta.read_text())
        rows = [json.loads(line) for line in art.train_metrics.read_text().splitlines()
                if line.strip()]
        version = meta["model_version"]
        params = {**flatten(meta["config"]), "seed": meta["seed"], "git_sha": meta["git_sha"],
                  "ds": ds, "model_version": version, "world_size": meta["world_size"],
                  "batch_size_per_rank": meta["batch_size_per_rank"],
                  "warm_start": (meta["warm_start"] or {}).get("model_version")}
        tags = {"model_version": version, "ds": ds, "algo": meta["algo"],
                "profile": cfg.profile, "mlflow.source.git.commit": meta["git_sha"],
                "actor_sha256": meta["actor_sha256"],
                "resume_count": str(meta["resume_count"])}
        final = {**meta["final_metrics"], "steps": meta["steps"], "epochs": meta["epochs"],
                 "train_wall_s": meta["train_wall_s"], "snapshot_rows": meta["snapshot_rows"]}
        rec = tracker.log_training(
            run_name=version, params=params, tags=tags, data_versions=meta["data_versions"],
            metrics=metric_rows(rows), final_metrics=final, actor=art.actor,
            artifacts=[art.meta, art.snapshot], model_version=version, ds=ds,
            actor_sha256=meta["actor_sha256"])
        log.info("MLflow: run %s in %s (%s), %s v%s%s", rec.run_id, tracker.experiment,
                 tracker.uri, tracker.model, rec.version, " (already registered)"
                 if rec.reused else "")
        return rec

    return guarded("train", log_run, strict=cfg.tracking.strict)


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--snapshot", default=None,
                       help="use this snapshot.json instead of pinning")
        p.add_argument("--warm-start", default=None,
                       help="initialise from this artifact folder or checkpoint.pt "
                            "(sets rl.warm_start)")
        p.add_argument("--no-progress", action="store_true")

    args, cfg = parse_job_args("Train EnhancedRL on a pinned Delta snapshot", argv, extra)
    if args.warm_start:
        cfg = dataclasses.replace(cfg, rl=dataclasses.replace(cfg.rl,
                                                              warm_start=args.warm_start))
    ctx = dd.init_from_env()
    try:
        if ctx.is_main:
            if args.snapshot:
                snap = Snapshot.load(args.snapshot)
                versions = {snap.table: snap.version}
            else:
                snap, versions = pin_snapshot(cfg, args.ds)
            log.info("snapshot %s@v%d: %d files, %d rows, days %s (world size %d)",
                     snap.table, snap.version, len(snap.files), snap.rows, snap.days,
                     ctx.world)
        snap, versions = dd.broadcast((snap, versions) if ctx.is_main else None, ctx)
        try:
            out_dir = artifact_dir(cfg, args.ds)
            train(cfg, args.ds, snap, versions, out_dir, progress=not args.no_progress,
                  ctx=ctx)
        except NonFiniteError as e:  # nothing exported; the registry says why
            if ctx.is_main:
                record_training_failure(cfg, args.ds, versions, str(e))
            raise
    finally:
        dd.close(ctx)
    if ctx.is_main:  # after the artifact is complete and the process group is closed
        track_training(cfg, args.ds, out_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
