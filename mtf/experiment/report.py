"""The experiment's outputs for people: report.md (one table per learner, the training-seed
table, the rank correlations) and plot.png (changes vs the fixed weights, NCIS vs the truth).

matplotlib is imported inside `plot`: `import mtf.experiment` does not load it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from mtf.experiment.config import ExperimentConfig
from mtf.experiment.evaluate import OFFLINE


def _fmt(v: float | None, p: int = 2) -> str:
    """`v` with `p` decimals; empty for a missing value or NaN."""
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{p}f}"


def report_markdown(exp: ExperimentConfig, rows: list[dict[str, Any]],
                    corr: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """report.md: the run's plan, one row per learner (truth, changes vs fixed, offline
    metrics), the training-seed table when there are several fits, the rank correlations."""
    by = {(r["learner"], r["metric"]): r for r in rows}
    names = list(dict.fromkeys(r["learner"] for r in rows if r["metric"] == "sim/uvc"))

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
    pair = [n for n in names if (n, "serving/swapped_slots") in by]
    if pair:
        oracle = ("pair_oracle_calibrated", "sim/uvc_delta_pct")
        lines += ["", "Pair level: paired change against UnifiedRL (fit i against UnifiedRL's "
                  "fit i, pooled over fits x evaluation seeds), the request-mean control "
                  "(each request served the mean of the pair actions) vs fixed, exposed "
                  "slots per request that differ from the request-mean action's, and the "
                  "share of the calibrated pair oracle's UVC gain over fixed"
                  + (f" ({cell(*oracle)} %)" if oracle in by else " (not run)") + ":", "",
                  "| learner | dUVC % vs UnifiedRL [95% CI] | dUDT % vs UnifiedRL [95% CI] "
                  "| request-mean dUVC % vs fixed [95% CI] | swapped slots / request "
                  "| oracle share |", "|---|---|---|---|---|---|"]

        def opt(n: str, m: str, p: int = 2) -> str:
            return cell(n, m, p) if (n, m) in by else ""

        for n in pair:
            lines.append(f"| {n} | {opt(n, 'sim/uvc_vs_unified_rl_pct')} "
                         f"| {opt(n, 'sim/udt_vs_unified_rl_pct')} "
                         f"| {opt(n, 'sim/uvc_request_mean_delta_pct')} "
                         f"| {opt(n, 'serving/swapped_slots')} "
                         f"| {opt(n, 'sim/uvc_oracle_share')} |")
    n_pol = corr[0]["n"] if corr else 0
    lines += ["", f"Rank correlation across the {n_pol} fitted policies (learners x training "
              "seeds) of the offline metric with the simulator's ground truth (mean over "
              "evaluation seeds):", "",
              "| offline metric | truth | Spearman | Kendall |", "|---|---|---|---|"]
    cv = {r["metric"]: r["value"] for r in corr}
    for off in OFFLINE:
        for truth in ("uvc", "udt"):
            if f"rank/spearman_{off}_vs_{truth}" in cv:
                lines.append(f"| {off} | {truth} "
                             f"| {_fmt(cv[f'rank/spearman_{off}_vs_{truth}'])} "
                             f"| {_fmt(cv[f'rank/kendall_{off}_vs_{truth}'])} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """plot.png: UVC / UDT change vs fixed with their CIs, and NCIS against the simulator's
    UVC per learner."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["learner"], r["metric"]): r for r in rows}
    names = list(dict.fromkeys(r["learner"] for r in rows if r["metric"] == "sim/uvc"))
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
