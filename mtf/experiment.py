"""The policy-quality experiment: every learner on the same simulated logs, scored against
the simulator's ground truth and by the offline metrics (issue 5; docs/EXPERIMENT.md).

    python -m mtf.experiment --config configs/experiment/default.yaml --out runs/experiment

1. Data. `data.days` days are simulated with box exploration on the training population.
   Day 1 is served by the production default weights; with `data.behaviour = <learner>`
   day d+1 is served by that learner fitted on days <= d (progressive rounds, ALGORITHM.md
   section 4), with `fixed` every day is. Every learner trains on the same days.
2. Fit. Each learner of `learners` is fitted on all days (model/learners).
3. Ground truth. Each policy is served without exploration to >= 5 held-out simulator
   populations (`eval.seeds`, fresh users, common random numbers across policies):
   UVC / UDT mean and 95% t-interval over the seeds, and the paired change vs the fixed
   weights in % (same seeds, so the CI is of the difference itself).
4. Offline metrics on held-out logs (a separate day served by the fixed weights with box
   exploration): NCIS (bootstrap CI over sessions) and MTF-GAUC, then the Spearman /
   Kendall rank correlation of each with the ground truth across the policies.
5. Outputs under --out: report.md, plot.png, results.json; rows in the Delta table
   `experiment_results` (unless --no-spark), replacing only this (ds, run_id).

Nothing here tunes the simulator: its parameters come from the pipeline profile.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import logging
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from core import schema as S
from core.settings import PROJECT_ROOT
from pipeline.config import PipelineConfig, load_config

log = logging.getLogger("mtf.experiment")
ALL_LEARNERS = ("fixed", "cem", "batchrl_mtf", "unified_rl", "enhanced_rl")
TABLE = "experiment_results"
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


# --- configuration -----------------------------------------------------------------------
@dataclass
class DataPlan:
    days: int = 3
    """Simulated training days; every learner trains on all of them."""
    start_ds: str = "2030-01-01"
    """First training day (YYYY-MM-DD); the days follow one another."""
    behaviour: str = "fixed"
    """Policy serving day d+1 (with box exploration): this learner fitted on days <= d
    (progressive rounds); 'fixed': the production default serves every day."""
    heldout_ds: str = "2030-06-01"
    """Held-out day for NCIS / MTF-GAUC, served by the fixed weights with box exploration."""


@dataclass
class EvalPlan:
    seeds: tuple[int, ...] = (101, 102, 103, 104, 105)
    """Held-out simulator populations for the ground truth (>= 5; none used in training)."""
    users: int = 2000
    """Users per held-out population."""
    sigma: float = 0.1
    """NCIS Gaussian kernel width of the evaluated policy (normalised action units)."""
    ncis_clip: float = 10.0
    """c: importance-ratio truncation of NCIS."""
    n_boot: int = 200
    """Bootstrap resamples of the NCIS CI."""

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("eval.seeds needs >= 2 distinct seeds (5 or more for a report)")


@dataclass
class ExperimentConfig:
    run_id: str = "experiment"
    """Name of the run: rows of experiment_results are replaced per (ds, run_id)."""
    profile: str = "demo"
    """Pipeline profile (configs/pipeline/<profile>.yaml): simulator, reward and RL base."""
    sim: dict[str, Any] = field(default_factory=dict)
    """Overrides of SimConfig fields (e.g. n_users, explore_per_candidate)."""
    rl: dict[str, Any] = field(default_factory=dict)
    """Overrides of EnhancedRLConfig shared by unified_rl and enhanced_rl."""
    learners: tuple[str, ...] = ALL_LEARNERS
    """Learners to fit and compare (model/learners LEARNERS)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-learner config overrides, by learner name (after `rl` for the RL learners)."""
    data: DataPlan = field(default_factory=DataPlan)
    """How the training logs are generated."""
    eval: EvalPlan = field(default_factory=EvalPlan)
    """Ground truth and offline metrics."""
    torch_threads: int = 1
    """torch.set_num_threads for the run (the machine is shared)."""
    train_seeds: tuple[int, ...] = ()
    """Training seeds: each learner with a `seed` in its config is fitted once per seed on
    the same logs (CIs over training randomness, `*_delta_pct_train` rows); the ground truth
    per evaluation seed is then the mean over the fits, the offline metrics are of the
    first fit. Empty: one fit with the configured seed."""

    def __post_init__(self) -> None:
        self.learners = tuple(self.learners)
        self.train_seeds = tuple(int(s) for s in self.train_seeds)
        if len(set(self.train_seeds)) != len(self.train_seeds):
            raise ValueError(f"train_seeds must be distinct, got {self.train_seeds}")
        if not _RUN_ID_RE.match(self.run_id):
            raise ValueError(f"run_id must match {_RUN_ID_RE.pattern}, got {self.run_id!r}")
        unknown = set(self.learners) - set(ALL_LEARNERS)
        if unknown or self.data.behaviour not in ALL_LEARNERS:
            raise ValueError(f"unknown learners {sorted(unknown)} / behaviour "
                             f"{self.data.behaviour!r}; known: {ALL_LEARNERS}")
        bad = set(self.params) - set(self.learners) - {self.data.behaviour}
        if bad:
            raise ValueError(f"params for learners not in the run: {sorted(bad)}")
        from model.learners import learner_config

        search = learner_config("cem", self.params.get("cem", {})).search_seeds
        overlap = set(search) & set(self.eval.seeds)
        if overlap:
            raise ValueError(f"cem.search_seeds overlap eval.seeds: {sorted(overlap)}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        d = yaml.safe_load(Path(path).read_text()) or {}
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) - names:
            raise KeyError(f"unknown experiment keys: {sorted(set(d) - names)}")
        d["data"] = DataPlan(**d.get("data", {}))
        d["eval"] = EvalPlan(**d.get("eval", {}))
        return cls(**d)

    def pipeline(self) -> PipelineConfig:
        """The pipeline profile with the sim / rl overrides; the RL box is the simulator's."""
        over = [f"sim.{k}={json.dumps(v)}" for k, v in self.sim.items()]
        over += [f"rl.{k}={json.dumps(v)}" for k, v in self.rl.items()]
        cfg = load_config(self.profile, over)
        cfg.rl = dataclasses.replace(cfg.rl, half_width=cfg.sim.explore_half_width)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


# --- statistics --------------------------------------------------------------------------
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
"""Student t 0.975 quantiles for 1..20 degrees of freedom (1.96 beyond)."""


def mean_ci(x: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over independent values (NaN CI if n < 2)."""
    a = np.asarray(x, np.float64)
    m = float(a.mean())
    if len(a) < 2:
        return m, float("nan"), float("nan")
    t = _T975[len(a) - 2] if len(a) - 1 <= len(_T975) else 1.96
    half = t * float(a.std(ddof=1)) / math.sqrt(len(a))
    return m, m - half, m + half


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their average rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on average ranks); NaN if a side is constant."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall tau-b over all pairs; NaN if a side is constant."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(a), 1)
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return float((sx * sy).sum() / denom) if denom > 0 else float("nan")


# --- the steps ---------------------------------------------------------------------------
def _day(start: str, k: int) -> str:
    return (dt.date.fromisoformat(start) + dt.timedelta(days=k)).isoformat()


def _pct_change(values: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-seed relative change of `values` over `base`, in percent (paired by seed)."""
    return [100.0 * (x - b) / b for x, b in zip(values, base)]


def _learner(name: str, exp: ExperimentConfig, cfg: PipelineConfig, seed: int | None = None):
    """Learner `name` with the experiment's config; `seed` (if given and the config has
    one) replaces its training seed."""
    from model.learners import build_learner

    base = cfg.rl if name in ("unified_rl", "enhanced_rl") else None
    params = dict(exp.params.get(name, {}))
    if seed is not None and _seeded(name):
        params["seed"] = seed
    return build_learner(name, params, base)


def _seeded(name: str) -> bool:
    """Whether learner `name`'s config has a training seed."""
    from model.learners import CONFIGS

    return "seed" in {f.name for f in dataclasses.fields(CONFIGS[name])}


def generate_data(exp: ExperimentConfig, cfg: PipelineConfig, ctx) -> tuple[Any, list[str]]:
    """The training logs (TrainData of all days) and the policy version serving each day."""
    from core.policy import FixedWeightsPolicy
    from model.learners import TrainData
    from sim import World, simulate_day

    world = World.build(cfg.sim)
    parts: list[TrainData] = []
    served: list[str] = []
    policy = FixedWeightsPolicy(version="fixed-v0")
    for d in range(exp.data.days):
        ds = _day(exp.data.start_ds, d)
        logs = simulate_day(world, policy, ds, explore=True, return_states=True)
        parts.append(TrainData.from_logs(logs, cfg.reward))
        served.append(policy.version)
        log.info("day %s served by %s: %d requests", ds, policy.version, len(parts[-1]))
        if exp.data.behaviour != "fixed" and d + 1 < exp.data.days:
            sub = dataclasses.replace(ctx, version=f"round{d + 1}")
            policy = _learner(exp.data.behaviour, exp, cfg).fit(TrainData.concat(parts),
                                                                  sub).policy
    return TrainData.concat(parts), served


def heldout_data(exp: ExperimentConfig, cfg: PipelineConfig):
    from core.policy import FixedWeightsPolicy
    from model.learners import TrainData
    from sim import World, simulate_day

    logs = simulate_day(World.build(cfg.sim), FixedWeightsPolicy(), exp.data.heldout_ds,
                        explore=True, return_states=True)
    return TrainData.from_logs(logs, cfg.reward)


def eval_actions(policy, data) -> np.ndarray:
    """The policy's action for every held-out pair [n, L, A] (user level broadcast)."""
    out = np.asarray(policy.act(data.user_state, data.pair_state), np.float64)
    if out.ndim == 2:
        out = np.broadcast_to(out[:, None, :], (len(data), S.LIST_LEN, S.ACTION_DIM))
    return np.clip(out, -1.0, 1.0)


def offline_metrics(policy, data, exp: ExperimentConfig, gamma: float) -> dict[str, Any]:
    """NCIS (units: held-out sessions' first requests) and MTF-GAUC on the held-out logs."""
    from core.fusion import log_fused_score
    from model.metrics import mtf_gauc, ncis

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
    from sim.simulator import evaluate_policy

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
            pct = _pct_change(r["truth"][m], baseline[m])
            vals += [(f"sim/{m}", mean_ci(r["truth"][m]), k),
                     (f"sim/{m}_delta_pct", mean_ci(pct), k)]
            if len(fits) > 1:  # one value per training seed: its mean change over eval seeds
                per_fit = [float(np.mean(_pct_change(f[m], baseline[m]))) for f in fits]
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
        for off, vals in (("ncis", [per_learner[n]["offline"]["ncis"][0] for n in names]),
                          ("mtf_gauc", [per_learner[n]["offline"]["mtf_gauc"] for n in names])):
            for kind, fn in (("spearman", spearman), ("kendall", kendall)):
                corr.append({"learner": "all", "level": "all",
                             "metric": f"rank/{kind}_{off}_vs_{truth}", "value": fn(vals, t),
                             "ci_low": None, "ci_high": None, "n": len(names)})
    return rows, corr


# --- outputs -----------------------------------------------------------------------------
def _fmt(v: float | None, p: int = 2) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{p}f}"


def report_markdown(exp: ExperimentConfig, rows: list[dict[str, Any]],
                    corr: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    by = {(r["learner"], r["metric"]): r for r in rows}
    names = list(dict.fromkeys(r["learner"] for r in rows))

    def cell(n: str, m: str, p: int = 2) -> str:
        r = by[(n, m)]
        if r["ci_low"] is None or math.isnan(r["ci_low"]):
            return _fmt(r["value"], p)
        return f"{_fmt(r['value'], p)} [{_fmt(r['ci_low'], p)}, {_fmt(r['ci_high'], p)}]"

    lines = [
        f"# Policy-quality experiment `{exp.run_id}`", "",
        f"Profile `{exp.profile}`; {meta['train_requests']} training requests over "
        f"{exp.data.days} days (served by: {', '.join(meta['served'])}); "
        f"ground truth on {len(exp.eval.seeds)} held-out populations of {exp.eval.users} users "
        f"(seeds {list(exp.eval.seeds)}); offline metrics on {meta['heldout_sessions']} "
        f"held-out sessions (NCIS sigma {exp.eval.sigma}, c {exp.eval.ncis_clip}). "
        f"Wall time {meta['seconds']:.0f} s.", "",
        "| learner | level | UVC [95% CI] | UDT s [95% CI] | dUVC % vs fixed [95% CI] "
        "| dUDT % vs fixed [95% CI] | NCIS [95% CI] | MTF-GAUC | fit s |",
        "|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        lines.append(
            f"| {n} | {by[(n, 'sim/uvc')]['level']} | {cell(n, 'sim/uvc')} "
            f"| {cell(n, 'sim/udt', 1)} | {cell(n, 'sim/uvc_delta_pct')} "
            f"| {cell(n, 'sim/udt_delta_pct')} | {cell(n, 'ncis')} "
            f"| {_fmt(by[(n, 'mtf_gauc')]['value'], 4)} "
            f"| {_fmt(by[(n, 'fit/seconds')]['value'], 0)} |")
    if any(m == "sim/uvc_delta_pct_train" for _, m in by):
        lines += ["", "Over training seeds (each value: one fit's mean change over the "
                  "evaluation seeds; 95% t-interval over the fits):", "",
                  "| learner | fits | dUVC % vs fixed [95% CI] | dUDT % vs fixed [95% CI] |",
                  "|---|---|---|---|"]
        for n in names:
            if (n, "sim/uvc_delta_pct_train") in by:
                lines.append(f"| {n} | {by[(n, 'sim/uvc_delta_pct_train')]['n']} "
                             f"| {cell(n, 'sim/uvc_delta_pct_train')} "
                             f"| {cell(n, 'sim/udt_delta_pct_train')} |")
    lines += ["", "Rank correlation across the policies of the offline metric with the "
              "simulator's ground truth (mean over seeds):", "",
              "| offline metric | truth | Spearman | Kendall |", "|---|---|---|---|"]
    cv = {r["metric"]: r["value"] for r in corr}
    for off in ("ncis", "mtf_gauc"):
        for truth in ("uvc", "udt"):
            lines.append(f"| {off} | {truth} | {_fmt(cv[f'rank/spearman_{off}_vs_{truth}'])} "
                         f"| {_fmt(cv[f'rank/kendall_{off}_vs_{truth}'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["learner"], r["metric"]): r for r in rows}
    names = list(dict.fromkeys(r["learner"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    x = np.arange(len(names))
    for ax, m, title in ((axes[0], "sim/uvc_delta_pct", "UVC change vs fixed (%)"),
                         (axes[1], "sim/udt_delta_pct", "UDT change vs fixed (%)")):
        v = np.array([by[(n, m)]["value"] for n in names])
        lo = np.array([by[(n, m)]["ci_low"] for n in names], float)
        hi = np.array([by[(n, m)]["ci_high"] for n in names], float)
        ax.bar(x, v, yerr=np.nan_to_num(np.vstack([v - lo, hi - v])), capsize=4,
               color="#4c72b0")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(f"{title}, 95% CI over seeds")
    ax = axes[2]
    for n in names:
        ax.errorbar(by[(n, "ncis")]["value"], by[(n, "sim/uvc")]["value"],
                    xerr=[[by[(n, "ncis")]["value"] - by[(n, "ncis")]["ci_low"]],
                          [by[(n, "ncis")]["ci_high"] - by[(n, "ncis")]["value"]]],
                    fmt="o", capsize=3, label=n)
    ax.set_xlabel("NCIS on held-out logs")
    ax.set_ylabel("simulator UVC (mean over seeds)")
    ax.set_title("offline NCIS vs ground truth")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_table(spark, db: str, ds: str, run_id: str, rows: list[dict[str, Any]]) -> int:
    """Replace this run's rows (ds, run_id) of experiment_results in one Delta commit."""
    from core.ds import validate_ds
    from store.tables import ensure_tables, qualified, table_location

    validate_ds(ds)
    if not _RUN_ID_RE.match(run_id):
        raise ValueError(f"bad run_id {run_id!r}")
    ensure_tables(spark, db)
    target = spark.table(qualified(db, TABLE))
    recs = [{**r, "ds": ds, "run_id": run_id,
             "ci_low": None if r["ci_low"] is None or math.isnan(r["ci_low"]) else r["ci_low"],
             "ci_high": None if r["ci_high"] is None or math.isnan(r["ci_high"])
             else r["ci_high"]} for r in rows]
    df = spark.createDataFrame(recs, schema=target.schema).select(*target.columns)
    (df.write.format("delta").mode("overwrite")
       .option("replaceWhere", f"ds = '{ds}' AND run_id = '{run_id}'")
       .save(table_location(spark, db, TABLE)))
    return len(recs)


# --- per-pair headroom (ORACLE, reads the simulator's truth) ------------------------------
HEADROOM_TARGETS = ("truth", "calibrated", "mtl")


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
        from core.fusion import log_fused_score

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


def headroom(exp: ExperimentConfig, out: Path, beta: float, n_draws: int = 32
             ) -> dict[str, Any]:
    """How much a pair-level policy can gain over a user-level one inside the same box.

    Centres: the fixed weights and UnifiedRL fitted on the experiment's logs (the best
    user-level learner). Around each, the user- and pair-level ORACLES of
    sim/oracle.py (targets truth / calibrated, and mtl: the raw predictions, a
    heuristic that reads no truth) within the logs' box half-width, served to the held-out
    populations: UVC / UDT change vs the centre, paired over the seeds. Also EnhancedRL
    fitted on the same logs, with a PairActionProbe (does it use its per-pair freedom?).
    """
    import torch

    from core.policy import FixedWeightsPolicy
    from model.learners import FitContext
    from sim.oracle import PairBoxOracle, StateDecoder, UserBoxOracle
    from sim.simulator import evaluate_policy, evaluation_world

    torch.set_num_threads(exp.torch_threads)
    t0 = time.perf_counter()
    cfg = exp.pipeline()
    h = cfg.sim.explore_half_width
    ctx = FitContext(ground_truth=functools.partial(evaluate_policy, cfg.sim), reward=cfg.reward,
                     version=exp.run_id)
    train, served = generate_data(exp, cfg, ctx)
    centres = {"fixed": FixedWeightsPolicy(),
               "unified_rl": _learner("unified_rl", exp, cfg).fit(train, ctx).policy}
    enhanced = _learner("enhanced_rl", exp, cfg).fit(train, ctx).policy
    per_seed: dict[str, dict[str, list[float]]] = {}

    def add(name: str, r: dict[str, float]) -> None:
        d = per_seed.setdefault(name, {"uvc": [], "udt": []})
        d["uvc"].append(r["uvc"])
        d["udt"].append(r["udt"])

    probes = []
    for s in exp.eval.seeds:
        dec = StateDecoder(evaluation_world(cfg.sim, s, exp.eval.users))
        probe = PairActionProbe(enhanced)
        probes.append(probe)
        add("enhanced_rl", evaluate_policy(cfg.sim, probe, seed=s, n_users=exp.eval.users))
        for cname, c in centres.items():
            add(cname, evaluate_policy(cfg.sim, c, seed=s, n_users=exp.eval.users))
            for tgt in HEADROOM_TARGETS:
                for lvl, pol in (("user", UserBoxOracle(c, dec, h, tgt, beta, n_draws)),
                                 ("pair", PairBoxOracle(c, dec, h, tgt, beta))):
                    add(f"{cname}+{lvl}_oracle_{tgt}",
                        evaluate_policy(cfg.sim, pol, seed=s, n_users=exp.eval.users))
        log.info("headroom seed %d done (%.0f s)", s, time.perf_counter() - t0)
    rows = []
    for name, d in per_seed.items():
        vs = name.split("+")[0] if "+" in name else "fixed"
        ref = per_seed[vs]
        row: dict[str, Any] = {"policy": name, "vs": vs}
        for m in ("uvc", "udt"):
            row[m] = mean_ci(d[m])
            row[f"{m}_delta_pct"] = mean_ci(_pct_change(d[m], ref[m]))
        rows.append(row)
    probe_stats = {"action_spread": float(np.mean([np.mean(p.spread) for p in probes])),
                   "changed_slots": float(np.mean([np.mean(p.changed) for p in probes]))}
    result = {"config": exp.to_dict(), "beta": beta, "half_width": h, "n_draws": n_draws,
              "served": served, "train_requests": len(train), "rows": rows,
              "per_seed": per_seed, "enhanced_probe": probe_stats,
              "seconds": time.perf_counter() - t0}
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Per-pair headroom (ORACLE, reads the simulator's truth), `{exp.run_id}`", "",
             f"Box half-width {h}, utility E[valid] + {beta} E[d satisfaction], "
             f"{len(exp.eval.seeds)} held-out populations of {exp.eval.users} users. "
             f"EnhancedRL probe: mean within-request action std {probe_stats['action_spread']:.4f}"
             f", exposed slots changed vs its request-mean action "
             f"{100 * probe_stats['changed_slots']:.1f}%. Wall time {result['seconds']:.0f} s.",
             "", "| policy | vs | UVC | dUVC % [95% CI] | dUDT % [95% CI] |",
             "|---|---|---|---|---|"]
    for r in rows:
        u, du, dt_ = r["uvc"], r["uvc_delta_pct"], r["udt_delta_pct"]
        lines.append(f"| {r['policy']} | {r['vs']} | {u[0]:.2f} | {du[0]:+.2f} "
                     f"[{du[1]:+.2f}, {du[2]:+.2f}] | {dt_[0]:+.2f} "
                     f"[{dt_[1]:+.2f}, {dt_[2]:+.2f}] |")
    (out / "headroom.md").write_text("\n".join(lines) + "\n")
    (out / "headroom.json").write_text(json.dumps(result, indent=1, default=float))
    return result


# --- entry points ------------------------------------------------------------------------
def run(exp: ExperimentConfig, out: Path) -> dict[str, Any]:
    """Generate, fit, evaluate; write report.md, plot.png and results.json under `out`."""
    import torch

    from core.policy import FixedWeightsPolicy
    from model.learners import FitContext
    from sim.simulator import evaluate_policy

    torch.set_num_threads(exp.torch_threads)
    t0 = time.perf_counter()
    cfg = exp.pipeline()
    ctx = FitContext(ground_truth=functools.partial(evaluate_policy, cfg.sim), reward=cfg.reward,
                     version=exp.run_id)
    train, served = generate_data(exp, cfg, ctx)
    held = heldout_data(exp, cfg)
    baseline = ground_truth(FixedWeightsPolicy(), exp, cfg)
    per: dict[str, dict[str, Any]] = {}
    for name in exp.learners:
        fits: list[dict[str, list[float]]] = []
        for ts in exp.train_seeds or (None,):
            t1 = time.perf_counter()
            learner = _learner(name, exp, cfg, ts)
            fitted = learner.fit(train, ctx)
            fit_s = time.perf_counter() - t1
            fits.append(ground_truth(fitted.policy, exp, cfg))
            if len(fits) == 1:
                per[name] = {"level": learner.level, "fit_seconds": fit_s,
                             "fit_steps": fitted.info.get("steps", 0.0),
                             "offline": offline_metrics(fitted.policy, held, exp, cfg.rl.gamma),
                             "final_losses": {k: float(np.mean(v[-50:])) for k, v in
                                              fitted.history.items()}}
            if not _seeded(name):
                break  # nothing random to vary (fixed)
        per[name]["truth"] = {m: [float(np.mean(v)) for v in zip(*(f[m] for f in fits))]
                              for m in ("uvc", "udt")}
        per[name]["truth_by_fit"] = fits
        log.info("%s: fit %.0f s, UVC %.3f, NCIS %.3f", name, fit_s,
                 np.mean(per[name]["truth"]["uvc"]), per[name]["offline"]["ncis"][0])
    rows, corr = summarise(per, baseline)
    meta = {"served": served, "train_requests": len(train),
            "heldout_sessions": int(len(held.first_requests())),
            "seconds": time.perf_counter() - t0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report_markdown(exp, rows, corr, meta))
    plot(rows, out / "plot.png")
    result = {"config": exp.to_dict(), "meta": meta, "rows": rows, "rank_correlations": corr,
              "per_seed": {n: r["truth"] for n, r in per.items()}, "baseline_fixed": baseline,
              "per_train_seed": {n: r["truth_by_fit"] for n, r in per.items()},
              "final_losses": {n: r["final_losses"] for n, r in per.items()}}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    from core.ds import validate_ds

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(PROJECT_ROOT / "configs/experiment/default.yaml"),
                   help="experiment plan YAML (configs/experiment/*.yaml)")
    p.add_argument("--out", required=True, help="folder for report.md, plot.png, results.json")
    p.add_argument("--ds", required=True, type=validate_ds,
                   help="partition of experiment_results, YYYY-MM-DD (an argument, never "
                        "the clock: a rerun replaces the same rows)")
    p.add_argument("--no-spark", action="store_true", help="skip the Delta write")
    p.add_argument("--headroom", type=float, metavar="BETA", default=None,
                   help="instead of the experiment: the per-pair headroom ORACLES with "
                        "utility E[valid] + BETA E[satisfaction change] (headroom.md / .json; "
                        "no Delta write)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    from pipeline.entry import setup_logging

    setup_logging()
    exp = ExperimentConfig.from_yaml(args.config)
    if args.headroom is not None:
        headroom(exp, Path(args.out), args.headroom)
        print((Path(args.out) / "headroom.md").read_text())
        return 0
    result = run(exp, Path(args.out))
    print((Path(args.out) / "report.md").read_text())
    if not args.no_spark:
        from store.spark import get_spark

        cfg = exp.pipeline()
        spark = get_spark(cfg, f"mtf-experiment-{exp.run_id}")
        n = write_table(spark, cfg.storage.database, args.ds, exp.run_id,
                        result["rows"] + result["rank_correlations"])
        log.info("wrote %d rows to %s.%s (ds=%s, run_id=%s)", n, cfg.storage.database, TABLE,
                 args.ds, exp.run_id)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
