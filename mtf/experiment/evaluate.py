"""How each fitted policy is scored: the simulator's ground truth on held-out populations,
NCIS and MTF-GAUC on the held-out logs (docs/ALGORITHM.md section 7), and the summary rows
(per learner, and the rank correlations across learners) of report.md and experiment_results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core import schema as S
from core.fusion import log_fused_score
from model.metrics import mtf_gauc, ncis
from mtf.experiment.config import ExperimentConfig
from mtf.experiment.stats import kendall, mean_ci, pct_change, spearman
from pipeline.config import PipelineConfig
from sim.simulator import evaluate_policy


def eval_actions(policy, data) -> np.ndarray:
    """The policy's action for every held-out pair [n, L, A] (user level broadcast)."""
    out = np.asarray(policy.act(data.user_state, data.pair_state), np.float64)
    if out.ndim == 2:
        out = np.broadcast_to(out[:, None, :], (len(data), S.LIST_LEN, S.ACTION_DIM))
    return np.clip(out, -1.0, 1.0)


def offline_metrics(policy, data, exp: ExperimentConfig, gamma: float) -> dict[str, Any]:
    """NCIS (units: held-out sessions' first requests) and MTF-GAUC on the held-out logs."""
    acts = eval_actions(policy, data)
    first = data.first_requests()
    v, lo, hi = ncis(data.action[first], data.box_center[first], data.mask[first], acts[first],
                     data.session_returns(gamma), half_width=data.half_width,
                     sigma=exp.eval.sigma, c=exp.eval.ncis_clip, n_boot=exp.eval.n_boot,
                     seed=0)
    preds = data.pair_state[..., S.OFFSET_PRED:S.OFFSET_PRED + S.NUM_HEADS]
    scores = log_fused_score(preds, acts).reshape(-1)
    m = data.mask.reshape(-1) > 0
    gauc = mtf_gauc(np.repeat(data.user_id, S.LIST_LEN)[m], scores[m], data.valid.reshape(-1)[m],
                    1.0 + data.reward.sum(1).reshape(-1)[m])
    return {"ncis": (v, lo, hi), "mtf_gauc": float(gauc), "units": int(len(first)),
            "pairs": int(m.sum())}


def ground_truth(policy, exp: ExperimentConfig, cfg: PipelineConfig) -> dict[str, list[float]]:
    """UVC / UDT per held-out population seed (common random numbers across policies)."""
    out: dict[str, list[float]] = {"uvc": [], "udt": []}
    for s in exp.eval.seeds:
        r = evaluate_policy(cfg.sim, policy, seed=s, n_users=exp.eval.users)
        out["uvc"].append(r["uvc"])
        out["udt"].append(r["udt"])
    return out


def summarise(per_learner: dict[str, dict[str, Any]], baseline: dict[str, list[float]]
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Long-format metric rows per learner, and the rank-correlation rows across learners."""
    rows: list[dict[str, Any]] = []
    for name, r in per_learner.items():
        k = len(r["truth"]["uvc"])
        vals: list[tuple[str, tuple[float, ...], int]] = []
        fits = r.get("truth_by_fit", [])
        for m in ("uvc", "udt"):
            pct = pct_change(r["truth"][m], baseline[m])
            vals += [(f"sim/{m}", mean_ci(r["truth"][m]), k),
                     (f"sim/{m}_delta_pct", mean_ci(pct), k)]
            if len(fits) > 1:  # one value per training seed: its mean change over eval seeds
                per_fit = [float(np.mean(pct_change(f[m], baseline[m]))) for f in fits]
                vals.append((f"sim/{m}_delta_pct_train", mean_ci(per_fit), len(fits)))
        vals += [("ncis", r["offline"]["ncis"], r["offline"]["units"]),
                 ("mtf_gauc", (r["offline"]["mtf_gauc"],), r["offline"]["pairs"]),
                 ("fit/seconds", (r["fit_seconds"],), 1), ("fit/steps", (r["fit_steps"],), 1)]
        for metric, v, n in vals:
            lo, hi = (v[1], v[2]) if len(v) == 3 else (None, None)
            rows.append({"learner": name, "level": r["level"], "metric": metric,
                         "value": float(v[0]), "ci_low": lo, "ci_high": hi, "n": int(n)})
    names = list(per_learner)
    corr: list[dict[str, Any]] = []
    for truth in ("uvc", "udt"):
        t = [float(np.mean(per_learner[n]["truth"][truth])) for n in names]
        for off, scores in (("ncis", [per_learner[n]["offline"]["ncis"][0] for n in names]),
                            ("mtf_gauc", [per_learner[n]["offline"]["mtf_gauc"] for n in names])):
            for kind, fn in (("spearman", spearman), ("kendall", kendall)):
                corr.append({"learner": "all", "level": "all",
                             "metric": f"rank/{kind}_{off}_vs_{truth}", "value": fn(scores, t),
                             "ci_low": None, "ci_high": None, "n": len(names)})
    return rows, corr
