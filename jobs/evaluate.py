"""Job `evaluate`: score today's candidate and the policy that served today.

On the newest day's held-out sessions (split = eval) it computes, for both policies, the
offline metrics of model/offline.py (the experiment's code): NCIS cumulative reward with
bootstrap CIs at each kernel width (docs/ALGORITHM.md section 7), MTF-GAUC, and with the
logged candidates the selection value (`dm/valid`, `dm/watch`); and, from the simulator,
the ground-truth UVC / UDT on a fresh seeded population (the "online A/B"). It also checks
the exported actor against the eager one (parity) and summarises the candidate's actions.
Writes `eval.json` in the candidate's artifact folder; the gate and publish read it.

    spark-submit jobs/evaluate.py --ds 2026-01-03
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import numpy as np
from pyspark.sql import SparkSession

from core import schema as S
from core.artifact import Artifact, model_version
from core.fusion import to_physical
from model.offline import HeldOut, OfflineEvaluator, OfflineSettings, pair_actions
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from pipeline.provenance import artifact_dir
from store.registry import PolicyRef, load_policy, serving_policy
from store.tables import ensure_tables, read_partition

log = logging.getLogger("jobs.evaluate")
L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM


def load_eval_data(spark: SparkSession, cfg: PipelineConfig, ds: str) -> HeldOut:
    """The day's held-out (split = eval) request lists, with their logged candidates."""
    db = cfg.storage.database
    es = read_partition(spark, db, "enhanced_state", ds).where("split = 'eval'")
    us = read_partition(spark, db, "user_state", ds).where("split = 'eval'").select(
        "request_id", "user_state")
    cand = [c for c in ("cand_state", "cand_mask") if c in es.columns]
    pdf = (es.join(us, "request_id").select(
        "session_id", "user_id", "request_index", "pair_state", "user_state", "action",
        "box_center", "mask", "reward_watch", "reward_other", "valid", *cand)
        .orderBy("session_id", "request_index").toPandas())
    if pdf.empty:
        raise RuntimeError(f"no held-out (split=eval) rows in enhanced_state for ds={ds}")
    n = len(pdf)

    def stack(col: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.stack(pdf[col].to_numpy()).astype(np.float32).reshape(n, *shape)

    cands: dict[str, np.ndarray] = {}
    if cand:
        k = len(pdf["cand_mask"].iloc[0])
        cands = {"cand_state": stack("cand_state", (k, D)), "cand_mask": stack("cand_mask", (k,))}
    watch = stack("reward_watch", (L,))
    return HeldOut(
        session=pdf["session_id"].to_numpy(), user_id=pdf["user_id"].to_numpy(),
        request_index=pdf["request_index"].to_numpy(), user_state=stack(
            "user_state", (S.USER_STATE_DIM,)), pair_state=stack("pair_state", (L, D)),
        action=stack("action", (L, A)), box_center=stack("box_center", (L, A)),
        mask=stack("mask", (L,)), reward=watch + stack("reward_other", (L,)),
        valid=stack("valid", (L,)), watch=watch, half_width=cfg.sim.explore_half_width,
        **cands)


def score_policy(policy, evaluator: OfflineEvaluator, cfg: PipelineConfig
                 ) -> dict[str, dict[str, float]]:
    """The offline metrics of model/offline.py (NCIS at every sigma, MTF-GAUC, the selection
    value with logged candidates) and the simulator's ground truth for one policy."""
    from sim import evaluate_policy

    metrics: dict[str, dict[str, float]] = {}
    for name, v in evaluator.score(policy).items():
        metrics[name] = ({"value": v[0]} if len(v) == 1
                         else {"value": v[0], "ci_low": v[1], "ci_high": v[2]})
    truth = evaluate_policy(cfg.sim, policy, seed=cfg.eval.ab_seed, n_users=cfg.eval.ab_users)
    for k in ("uvc", "udt", "sessions", "requests"):
        metrics[f"sim/{k}"] = {"value": float(truth[k])}
    return metrics


def action_summary(acts: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    a = acts[mask > 0]
    phys = to_physical(np.clip(a, -1, 1))
    return {
        "finite": bool(np.isfinite(a).all()),
        "min": float(np.nanmin(a)) if a.size else 0.0,
        "max": float(np.nanmax(a)) if a.size else 0.0,
        "mean_physical": [float(x) for x in phys.mean(axis=0)] if a.size else [],
    }


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> dict:
    import torch

    from core.policy import TorchScriptPolicy
    from model.enhanced_rl import EnhancedRL
    from model.export import check_parity, load_actor

    db = cfg.storage.database
    ensure_tables(spark, db)
    version = model_version(cfg.algo, ds)
    art = Artifact(artifact_dir(cfg, ds))
    meta = json.loads(art.meta.read_text())
    data = load_eval_data(spark, cfg, ds)
    evaluator = OfflineEvaluator(data, OfflineSettings(
        gamma=cfg.rl.gamma, sigmas=cfg.eval.sigmas, ncis_clip=cfg.eval.ncis_clip,
        n_boot=cfg.eval.n_boot, value_steps=cfg.eval.value_steps))
    current_ref: PolicyRef = serving_policy(spark, db, ds)
    candidate = TorchScriptPolicy(str(art.actor), level="pair", version=version,
                                  expected_sha256=meta["actor_sha256"])
    # parity of the exported actor with the eager one restored from the checkpoint
    # tensors and plain values only: loading runs no code from the file
    ckpt = torch.load(art.checkpoint, map_location="cpu", weights_only=True)
    learner = EnhancedRL(type(cfg.rl).from_dict(ckpt["config"]["rl"]))
    learner.load_state_dict(ckpt["learner"])
    params_finite = all(bool(torch.isfinite(p).all()) for p in learner.actor.parameters())
    example = torch.from_numpy(data.pair_state.reshape(-1, D)[:4096])
    parity = check_parity(learner.actor, load_actor(art.actor, meta["actor_sha256"]),
                          example)
    cand_acts = pair_actions(candidate, data.user_state, data.pair_state)
    record = {
        "ds": ds, "model_version": version, "algo": cfg.algo,
        "eval_requests": int(len(data.mask)),
        "eval_sessions": int(len(np.unique(data.session))),
        "candidate": {"model_version": version, "algo": cfg.algo,
                      "metrics": score_policy(candidate, evaluator, cfg)},
        "current": {"model_version": current_ref.model_version, "algo": current_ref.algo,
                    "metrics": score_policy(load_policy(current_ref), evaluator, cfg)},
        "checks": {"params_finite": params_finite, "parity_max_abs_diff": float(parity),
                   "actions": action_summary(cand_acts, data.mask)},
        "train": meta.get("final_metrics", {}),
    }
    art.eval.write_text(json.dumps(record, indent=1, default=float))
    log.info("evaluated %s vs %s: %s", version, current_ref.model_version, json.dumps(
        {r: {k: round(v["value"], 4) for k, v in record[r]["metrics"].items()}
         for r in ("candidate", "current")}))
    return record


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("evaluate", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
