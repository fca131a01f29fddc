"""Job `evaluate`: score today's candidate and the policy that served today.

On the newest day's held-out sessions (split = eval) it computes, for both policies:
NCIS cumulative reward with bootstrap CIs at each kernel width (docs/ALGORITHM.md section 7),
MTF-GAUC, and, from the simulator, the ground-truth UVC / UDT on a fresh seeded
population (the "online A/B"). It also checks the exported actor against the eager one
(parity) and summarises the candidate's actions. Writes `eval.json` in the candidate's
artifact folder; the gate and publish read it.

    spark-submit jobs/evaluate.py --ds 2026-01-03
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from core import schema as S
from core.artifact import Artifact, model_version
from core.fusion import log_fused_score, to_physical
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from pipeline.provenance import artifact_dir
from store.registry import PolicyRef, load_policy, serving_policy
from store.tables import ensure_tables, read_partition

log = logging.getLogger("jobs.evaluate")
L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM


@dataclass
class EvalData:
    """Held-out request lists as arrays."""

    session_id: np.ndarray  # [n]
    user_id: np.ndarray  # [n]
    request_index: np.ndarray  # [n]
    pair_state: np.ndarray  # [n, L, D]
    user_state: np.ndarray  # [n, USER_STATE_DIM]
    action: np.ndarray  # [n, L, A]
    box_center: np.ndarray  # [n, L, A]
    mask: np.ndarray  # [n, L]
    reward: np.ndarray  # [n, L] both critic sets summed
    valid: np.ndarray  # [n, L]

    @classmethod
    def from_pandas(cls, pdf: pd.DataFrame) -> EvalData:
        n = len(pdf)

        def stack(col: str, shape: tuple[int, ...]) -> np.ndarray:
            if n == 0:
                return np.zeros((0, *shape), np.float32)
            return np.stack(pdf[col].to_numpy()).astype(np.float32).reshape(n, *shape)

        return cls(
            session_id=pdf["session_id"].to_numpy(), user_id=pdf["user_id"].to_numpy(),
            request_index=pdf["request_index"].to_numpy(),
            pair_state=stack("pair_state", (L, D)), user_state=stack("user_state",
                                                                     (S.USER_STATE_DIM,)),
            action=stack("action", (L, A)), box_center=stack("box_center", (L, A)),
            mask=stack("mask", (L,)),
            reward=stack("reward_watch", (L,)) + stack("reward_other", (L,)),
            valid=stack("valid", (L,)))


def load_eval_data(spark: SparkSession, db: str, ds: str) -> EvalData:
    es = read_partition(spark, db, "enhanced_state", ds).where("split = 'eval'")
    us = read_partition(spark, db, "user_state", ds).where("split = 'eval'").select(
        "request_id", "user_state")
    pdf = (es.join(us, "request_id").select(
        "session_id", "user_id", "request_index", "pair_state", "user_state", "action",
        "box_center", "mask", "reward_watch", "reward_other", "valid")
        .orderBy("session_id", "request_index").toPandas())
    if pdf.empty:
        raise RuntimeError(f"no held-out (split=eval) rows in enhanced_state for ds={ds}")
    return EvalData.from_pandas(pdf)


def policy_actions(policy, data: EvalData) -> np.ndarray:
    """The evaluated policy's normalised action for every logged pair. [n, L, A]"""
    out = np.asarray(policy.act(data.user_state, data.pair_state), dtype=np.float64)
    if out.ndim == 2:  # fixed / user level: one action per request
        out = np.broadcast_to(out[:, None, :], (out.shape[0], L, A))
    assert out.shape == (len(data.mask), L, A), out.shape
    return out


def score_policy(policy, data: EvalData, cfg: PipelineConfig) -> dict[str, dict[str, float]]:
    """NCIS at every sigma, MTF-GAUC, and the simulator's ground truth for one policy."""
    from model.metrics import discounted_returns, mtf_gauc, ncis
    from sim import evaluate_policy

    acts = policy_actions(policy, data)
    metrics: dict[str, dict[str, float]] = {}
    list_reward = (data.reward * data.mask).sum(axis=1)
    sess, returns = discounted_returns(data.session_id, data.request_index, list_reward,
                                       cfg.rl.gamma)
    first = data.request_index == 0
    # units = sessions that start on this day, in the order discounted_returns reports them
    order = {s: i for i, s in enumerate(data.session_id[first])}
    keep = np.array([s in order for s in sess])
    idx = np.array([order[s] for s in np.asarray(sess)[keep]], dtype=np.int64)
    sel = np.flatnonzero(first)[idx]
    for sigma in cfg.eval.sigmas:
        v, lo, hi = ncis(data.action[sel], data.box_center[sel], data.mask[sel], acts[sel],
                         np.asarray(returns)[keep], half_width=cfg.sim.explore_half_width,
                         sigma=sigma, c=cfg.eval.ncis_clip, n_boot=cfg.eval.n_boot, seed=0)
        metrics[f"ncis/sigma_{sigma:g}"] = {"value": v, "ci_low": lo, "ci_high": hi}
    m = data.mask.reshape(-1) > 0
    preds = data.pair_state[..., S.PAIR_PRED].reshape(-1, S.NUM_HEADS)
    scores = log_fused_score(preds, acts.reshape(-1, A))
    users = np.repeat(data.user_id, L)
    gauc = mtf_gauc(users[m], scores[m], data.valid.reshape(-1)[m],
                    1.0 + data.reward.reshape(-1)[m])
    metrics["mtf_gauc"] = {"value": float(gauc)}
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
    data = load_eval_data(spark, db, ds)
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
    cand_acts = policy_actions(candidate, data)
    record = {
        "ds": ds, "model_version": version, "algo": cfg.algo,
        "eval_requests": int(len(data.mask)),
        "eval_sessions": int(len(np.unique(data.session_id))),
        "candidate": {"model_version": version, "algo": cfg.algo,
                      "metrics": score_policy(candidate, data, cfg)},
        "current": {"model_version": current_ref.model_version, "algo": current_ref.algo,
                    "metrics": score_policy(load_policy(current_ref), data, cfg)},
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
