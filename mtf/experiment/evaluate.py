"""How each fitted policy is scored: the simulator's ground truth on held-out populations,
NCIS and MTF-GAUC on the held-out logs (docs/ALGORITHM.md section 7), and the summary rows
(per learner, and the rank correlations across learners) of report.md and experiment_results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core import schema as S
from core.fusion import log_fused_score
from core.policy import FixedWeightsPolicy
from mtf.experiment.config import ExperimentConfig
from mtf.experiment.stats import kendall, mean_ci, pct_change, spearman
from pipeline.config import PipelineConfig
from sim.simulator import evaluate_policy


class PairActionProbe:
    """Serves a pair-level policy unchanged and records how much its per-pair freedom is
    used: the spread of its actions across a request's candidates, and the share of exposed
    slots that differ from the top L under the request's mean action (0: it behaves exactly
    like a user-level policy)."""

    def __init__(self, policy):
        self.policy, self.level, self.version = policy, policy.level, policy.version
        self.spread: list[float] = []
        self.changed: list[float] = []

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(self.policy.act(user_state, pair_state), np.float64), -1, 1)
        preds = np.asarray(pair_state)[..., S.OFFSET_PRED:S.OFFSET_PRED + S.NUM_HEADS]
        mean = a.mean(1, keepdims=True)
        own = np.sort(np.argsort(-log_fused_score(preds, a), 1, kind="stable")[:, :S.LIST_LEN])
        avg = np.sort(np.argsort(-log_fused_score(preds, mean), 1, kind="stable")
                      [:, :S.LIST_LEN])
        changed = [len(np.setdiff1d(x, y)) for x, y in zip(own, avg)]
        self.spread.append(float(a.std(1).mean()))
        self.changed.append(float(np.mean(changed)) / S.LIST_LEN)
        return a.astype(np.float32)


class RequestMeanPolicy:
    """The request-mean control of a pair-level policy: one action per request, the mean of
    the pair actions over the request's candidates (level user). A pair-level gain that
    survives this is not per pair; one that vanishes is."""

    level = "user"

    def __init__(self, policy):
        self.policy, self.version = policy, f"{policy.version}-request-mean"

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        a = np.clip(np.asarray(self.policy.act(user_state, pair_state), np.float64), -1, 1)
        return a.mean(1).astype(np.float32)


def offline_evaluator(data, exp: ExperimentConfig, gamma: float):
    """The held-out logs' OfflineEvaluator (model/offline.py, the nightly job's code): NCIS at
    the plan's sigma, MTF-GAUC and the selection value."""
    from model.offline import HeldOut, OfflineEvaluator, OfflineSettings

    return OfflineEvaluator(HeldOut.from_train_data(data), OfflineSettings(
        gamma=gamma, sigmas=(exp.eval.sigma,), ncis_clip=exp.eval.ncis_clip,
        n_boot=exp.eval.n_boot, value_steps=exp.eval.value_steps))


OFFLINE = ("ncis", "mtf_gauc", "dm_valid", "dm_watch")
"""The offline metrics of a fit (keys of `offline_metrics`), ranked against the truth."""


def offline_metrics(policy, evaluator, exp: ExperimentConfig) -> dict[str, Any]:
    """NCIS (units: held-out sessions' first requests), MTF-GAUC and, with logged
    candidates, the selection value (dm_valid, dm_watch) on the held-out logs."""
    got = evaluator.score(policy)
    out: dict[str, Any] = {"ncis": got[f"ncis/sigma_{exp.eval.sigma:g}"],
                           "mtf_gauc": float(got["mtf_gauc"][0]),
                           "units": evaluator.units,
                           "pairs": int(evaluator.data.mask.sum())}
    for k in ("valid", "watch"):
        if f"dm/{k}" in got:
            out[f"dm_{k}"] = got[f"dm/{k}"]
    return out


def _truth_by_seed(exp: ExperimentConfig, cfg: PipelineConfig, serve
                   ) -> dict[str, list[float]]:
    """UVC / UDT of `serve(seed)` on each held-out population seed (common random numbers
    across policies); `swapped` too when it is a PairActionProbe."""
    out: dict[str, list[float]] = {"uvc": [], "udt": []}
    for s in exp.eval.seeds:
        served = serve(s)
        r = evaluate_policy(cfg.sim, served, seed=s, n_users=exp.eval.users)
        out["uvc"].append(r["uvc"])
        out["udt"].append(r["udt"])
        if isinstance(served, PairActionProbe):
            out.setdefault("swapped", []).append(S.LIST_LEN * float(np.mean(served.changed)))
    return out


def ground_truth(policy, exp: ExperimentConfig, cfg: PipelineConfig) -> dict[str, list[float]]:
    """UVC / UDT per held-out population seed (common random numbers across policies); for
    a pair-level policy also `swapped`: exposed slots per request that differ from what its
    request-mean action would expose (PairActionProbe), per seed."""
    return _truth_by_seed(exp, cfg, lambda s: PairActionProbe(policy)
                          if policy.level == "pair" else policy)


def pair_oracle_truth(exp: ExperimentConfig, cfg: PipelineConfig, beta: float
                      ) -> dict[str, list[float]]:
    """UVC / UDT of the calibrated pair ORACLE around the fixed weights (sim/oracle.py) on
    the evaluation populations: the reference of the `oracle_share` rows."""
    from sim.oracle import PairBoxOracle, StateDecoder
    from sim.simulator import evaluation_world

    return _truth_by_seed(exp, cfg, lambda s: PairBoxOracle(
        FixedWeightsPolicy(), StateDecoder(evaluation_world(cfg.sim, s, exp.eval.users)),
        cfg.sim.explore_half_width, "calibrated", beta))


def _fit_mean(fits: list[dict[str, list[float]]], m: str) -> list[float]:
    """Per evaluation seed, the mean of metric m over the fits."""
    return [float(np.mean(v)) for v in zip(*(f[m] for f in fits))]


def pair_rows(name: str, r: dict[str, Any], per_learner: dict[str, dict[str, Any]],
              baseline: dict[str, list[float]], oracle: dict[str, list[float]] | None
              ) -> list[tuple[str, tuple[float, ...], int]]:
    """A pair-level learner's extra rows: the paired change against UnifiedRL (fit i against
    UnifiedRL's fit i, pooled over fits x evaluation seeds), its request-mean control vs
    fixed, the exposed slots it swaps per request, and the share of the pair oracle's UVC
    gain it captures."""
    fits, vals = r["truth_by_fit"], []
    uni = per_learner.get("unified_rl", {}).get("truth_by_fit", [])
    if len(uni) == len(fits):
        for m in ("uvc", "udt"):
            pooled = [d for f, u in zip(fits, uni) for d in pct_change(f[m], u[m])]
            vals.append((f"sim/{m}_vs_unified_rl_pct", mean_ci(pooled), len(pooled)))
    if r.get("control_by_fit"):
        for m in ("uvc", "udt"):
            ctl = pct_change(_fit_mean(r["control_by_fit"], m), baseline[m])
            vals.append((f"sim/{m}_request_mean_delta_pct", mean_ci(ctl), len(ctl)))
    if all("swapped" in f for f in fits):
        sw = [float(np.mean(f["swapped"])) for f in fits]
        vals.append(("serving/swapped_slots", mean_ci(sw) if len(sw) > 1 else (sw[0],),
                     len(sw)))
    if oracle is not None:
        gain = float(np.mean(pct_change(_fit_mean(fits, "uvc"), baseline["uvc"])))
        top = float(np.mean(pct_change(oracle["uvc"], baseline["uvc"])))
        vals.append(("sim/uvc_oracle_share", (gain / top if top else float("nan"),), len(fits)))
    return vals


def summarise(per_learner: dict[str, dict[str, Any]], baseline: dict[str, list[float]],
              oracle: dict[str, list[float]] | None = None
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Long-format metric rows per learner, and the rank-correlation rows across learners."""
    rows: list[dict[str, Any]] = []
    if oracle is not None:
        for m in ("uvc", "udt"):
            v = mean_ci(pct_change(oracle[m], baseline[m]))
            rows.append({"learner": "pair_oracle_calibrated", "level": "pair",
                         "metric": f"sim/{m}_delta_pct", "value": v[0], "ci_low": v[1],
                         "ci_high": v[2], "n": len(oracle[m])})
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
        if r["level"] == "pair":
            vals += pair_rows(name, r, per_learner, baseline, oracle)
        off = r["offline"]
        vals += [("dm/" + k[3:], off[k], off["units"]) for k in ("dm_valid", "dm_watch")
                 if k in off]
        vals += [("ncis", off["ncis"], off["units"]),
                 ("mtf_gauc", (off["mtf_gauc"],), off["pairs"]),
                 ("fit/seconds", (r["fit_seconds"],), 1), ("fit/steps", (r["fit_steps"],), 1)]
        for metric, v, n in vals:
            lo, hi = (v[1], v[2]) if len(v) == 3 else (None, None)
            rows.append({"learner": name, "level": r["level"], "metric": metric,
                         "value": float(v[0]), "ci_low": lo, "ci_high": hi, "n": int(n)})
    # every fit is a policy: rank them all (learners x training seeds) against the truth
    fits = [(f, o) for r in per_learner.values()
            for f, o in zip(r.get("truth_by_fit", []), r.get("offline_by_fit", []))]
    corr: list[dict[str, Any]] = []
    for truth in ("uvc", "udt"):
        t = [float(np.mean(f[truth])) for f, _ in fits]
        for off in OFFLINE:
            if not all(off in o for _, o in fits):
                continue
            scores = [float(o[off][0]) if isinstance(o[off], tuple | list) else float(o[off])
                      for _, o in fits]
            for kind, fn in (("spearman", spearman), ("kendall", kendall)):
                corr.append({"learner": "all", "level": "all",
                             "metric": f"rank/{kind}_{off}_vs_{truth}", "value": fn(scores, t),
                             "ci_low": None, "ci_high": None, "n": len(fits)})
    return rows, corr
