"""Job `report`: the nightly report of day ds, an HTML page with PNG plots.

Why: the gate decides alone each night, and the numbers behind its decision are spread
over Delta tables and artifact files. One page per day answers the morning question first
(the headline: published or rejected, and why, from `policy_registry`), then lets an
engineer or analyst see whether the day's logs were sound (landed / accepted / quarantined
per table and the rules that fired, from `dq_metrics`), whether training behaved (curves
from the artifact's `train_metrics.jsonl`), how the offline metrics moved over the days
(`v_offline_metrics_daily`), what weights the published policy gives (distribution per
objective from `fusion_weights`, zoomed to the per-pair spread), and what users did under
each A/B arm, day over day with 95% CIs (`v_online_metrics_daily`), and the day's online
A/B against the holdout with the lifts and their CIs (`v_online_ab`), next to the day's
candidate vs
current comparison (`v_policy_comparison`), and where the candidate came from (git SHA,
seed, Delta versions read, artifact checksum). `<reports>/index.html` lists every day with
its decision.

Spark only aggregates (the histograms are computed in Spark, so the driver never
collects per-pair rows); pandas + matplotlib draw. Output:

    <local_dir>/_reports/<ds>/report.html + *.png     (the path is logged)
    <local_dir>/_reports/index.html                   (every day, newest first)

    spark-submit jobs/report.py --ds 2026-01-03
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pyspark.sql import SparkSession

from core import schema as S
from core.ab import lift_text
from core.artifact import Artifact
from core.ds import validate_ds
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from pipeline.provenance import artifact_dir
from store.tables import ensure_tables
from store.views import ensure_views

log = logging.getLogger("jobs.report")

TRAIN_CURVES = ("losses/critic", "losses/actor", "losses/box_penalty", "q/mean",
                "losses/ensemble_std", "charts/in_box_frac")
HISTORY_METRICS = (("ncis_s01", "NCIS (sigma 0.1)"), ("mtf_gauc", "MTF-GAUC"),
                   ("sim_uvc", "simulator UVC"))
# histogram ranges of the physical fusion weights (core/fusion.py: power in [0, 2],
# bias in [0.01, 0.51]; the fusion_weights CHECK constraints enforce them)
WEIGHT_RANGES = {"power": (0.0, 2.0), "bias": (0.01, 0.51)}
BINS = 40


@dataclass
class ReportData:
    """Everything the report shows, as small pandas frames (already aggregated)."""

    ds: str
    train_curves: pd.DataFrame
    """One row per logged training step: `step` and the TRAIN_CURVES columns present."""
    offline: pd.DataFrame
    """v_offline_metrics_daily rows up to ds."""
    weights: pd.DataFrame
    """Histogram of the published weights: `weight` (e.g. power_valid), `bin`, `n`."""
    online: pd.DataFrame
    """v_online_metrics_daily rows up to ds."""
    comparison: pd.DataFrame
    """v_policy_comparison rows of ds."""
    decision: dict | None = None
    """The policy_registry row of the candidate trained on ds (None: none registered)."""
    dq: pd.DataFrame = field(default_factory=pd.DataFrame)
    """dq_metrics rows of ds: table_name, rule, severity, rows_checked, rows_failed."""
    ab: pd.DataFrame = field(default_factory=pd.DataFrame)
    """v_online_ab rows of ds (each arm against the holdout; empty without a holdout)."""


def read_train_curves(path: Path) -> pd.DataFrame:
    """The training log (one JSON object per line); empty when the day trained nothing."""
    if not path.exists():
        return pd.DataFrame(columns=["step"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    df = pd.DataFrame(rows)
    return df[["step", *[c for c in TRAIN_CURVES if c in df.columns]]] if rows else df


def weight_histograms_sql(db: str, ds: str) -> str:
    """Per weight column, counts in BINS equal bins of its range (pairs only, no fallback)."""
    cols = [(f"{kind}_{o}", *WEIGHT_RANGES[kind]) for kind in ("power", "bias")
            for o in S.OBJECTIVES]
    stack = ", ".join(f"'{c}', {c}" for c, _, _ in cols)
    lows = " ".join(f"WHEN '{c}' THEN {lo}" for c, lo, _ in cols)
    widths = " ".join(f"WHEN '{c}' THEN {(hi - lo) / BINS}" for c, lo, hi in cols)
    return f"""
    WITH long AS (
      SELECT stack({len(cols)}, {stack}) AS (weight, value)
      FROM {db}.fusion_weights WHERE ds = '{validate_ds(ds)}' AND item_id >= 0)
    SELECT weight,
           least({BINS - 1}, greatest(0, CAST(floor((value - CASE weight {lows} END)
                 / CASE weight {widths} END) AS INT))) AS bin,
           count(*) AS n
    FROM long GROUP BY 1, 2 ORDER BY 1, 2"""


def collect(spark: SparkSession, cfg: PipelineConfig, ds: str) -> ReportData:
    db = cfg.storage.database
    ensure_tables(spark, db)
    ensure_views(spark, db)

    def pdf(query: str) -> pd.DataFrame:
        return spark.sql(query).toPandas()

    return ReportData(
        ds=ds,
        train_curves=read_train_curves(Artifact(artifact_dir(cfg, ds)).train_metrics),
        offline=pdf(f"SELECT * FROM {db}.v_offline_metrics_daily WHERE ds <= '{ds}' "
                    f"ORDER BY ds, role"),
        weights=pdf(weight_histograms_sql(db, ds)),
        online=pdf(f"SELECT * FROM {db}.v_online_metrics_daily WHERE ds <= '{ds}' "
                   f"ORDER BY ds, arm, policy_version"),
        ab=pdf(f"SELECT arm, policy_version, users, holdout_users, uvc, holdout_uvc, uvc_lift, "
               f"uvc_lift_low, uvc_lift_high, udt, holdout_udt, udt_lift, udt_lift_low, "
               f"udt_lift_high, regression FROM {db}.v_online_ab WHERE ds = '{ds}' "
               f"ORDER BY arm"),
        comparison=pdf(f"SELECT metric, candidate_version, current_version, candidate_value, "
                       f"current_value, delta, rel_delta, decision, reason "
                       f"FROM {db}.v_policy_comparison WHERE ds = '{ds}' ORDER BY metric"),
        decision=next(iter(pdf(f"SELECT * FROM {db}.policy_registry WHERE ds = '{ds}' "
                               f"ORDER BY model_version DESC LIMIT 1").to_dict("records")),
                      None),
        dq=pdf(f"SELECT table_name, rule, severity, rows_checked, rows_failed "
               f"FROM {db}.dq_metrics WHERE ds = '{ds}' ORDER BY table_name, rule"))


def _figure(n_plots: int, ncols: int = 3):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nrows = max(1, -(-n_plots // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax in axes.flat[n_plots:]:
        ax.axis("off")
    return fig, list(axes.flat)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_train_curves(df: pd.DataFrame, path: Path) -> Path | None:
    curves = [c for c in TRAIN_CURVES if c in df.columns]
    if df.empty or not curves:
        return None
    fig, axes = _figure(len(curves))
    for ax, c in zip(axes, curves):
        ax.plot(df["step"], df[c], lw=1.2)
        ax.set_title(c, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    return _save(fig, path)


def plot_offline_history(df: pd.DataFrame, path: Path) -> Path | None:
    if df.empty:
        return None
    fig, axes = _figure(len(HISTORY_METRICS))
    for ax, (col, title) in zip(axes, HISTORY_METRICS):
        for role, g in df.groupby("role"):
            g = g.sort_values("ds")
            ax.plot(g["ds"], g[col], marker="o", label=role)
            if col == "ncis_s01":
                ax.fill_between(g["ds"], g["ncis_s01_ci_low"].astype(float),
                                g["ncis_s01_ci_high"].astype(float), alpha=0.15)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_weights(df: pd.DataFrame, path: Path) -> Path | None:
    if df.empty:
        return None
    names = [f"{k}_{o}" for k in ("power", "bias") for o in S.OBJECTIVES]
    fig, axes = _figure(len(names), ncols=len(S.OBJECTIVES))
    for ax, name in zip(axes, names):
        lo, hi = WEIGHT_RANGES[name.split("_")[0]]
        width = (hi - lo) / BINS
        g = df[df["weight"] == name]
        ax.bar(lo + (g["bin"].astype(float) + 0.5) * width, g["n"], width=width)
        if len(g):  # zoomed to the bins in use: the per-pair spread, not the whole range
            ax.set_xlim(lo + (int(g["bin"].min()) - 1) * width,
                        lo + (int(g["bin"].max()) + 2) * width)
        ax.set_title(name, fontsize=9)
    return _save(fig, path)


def plot_online(df: pd.DataFrame, path: Path) -> Path | None:
    if df.empty:
        return None
    days = sorted(df["ds"].unique())
    x = {d: i for i, d in enumerate(days)}
    fig, axes = _figure(2, ncols=2)
    for ax, col, title in ((axes[0], "uvc", "UVC per active user (95% CI)"),
                           (axes[1], "udt", "UDT (s) per active user (95% CI)")):
        for arm, g in df.groupby("arm"):  # lines: the axis is not from 0
            g = g.sort_values("ds")
            xs = [x[d] for d in g["ds"]]
            line, = ax.plot(xs, g[col], marker="o", label=arm)
            lo, hi = g[f"{col}_ci_low"].astype(float), g[f"{col}_ci_high"].astype(float)
            if lo.notna().all() and hi.notna().all():
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xticks(range(len(days)), days)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    return _save(fig, path)


def _table(df: pd.DataFrame) -> str:
    if df.empty:
        return "<p><em>no rows</em></p>"
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", border=0)


def ab_section(ab: pd.DataFrame) -> str:
    """The day's A/B: each arm's lift against the holdout with its 95% CI, regressions first."""
    if ab.empty:
        return ("<p><em>no holdout arm on this day (ab.holdout_share = 0): day-over-day "
                "changes below are not an A/B</em></p>")

    rows = pd.DataFrame([{
        "arm": r["arm"], "policy": r["policy_version"],
        "users (holdout)": f"{r['users']} ({r['holdout_users']})",
        "UVC (holdout)": f"{r['uvc']:.4g} ({r['holdout_uvc']:.4g})",
        "UVC lift [95% CI]": lift_text(r, "uvc"),
        "UDT (holdout)": f"{r['udt']:.4g} ({r['holdout_udt']:.4g})",
        "UDT lift [95% CI]": lift_text(r, "udt"),
        "regression": "YES" if r["regression"] else "no"} for r in ab.to_dict("records")])
    bad = rows[rows["regression"] == "YES"]["arm"].tolist()
    note = (f"<p class='decision'><b>ONLINE REGRESSION</b> in arm(s) {html.escape(', '.join(bad))}"
            "</p>" if bad else "")
    return note + _table(rows)


def headline(decision: dict | None, ds: str) -> str:
    """The morning answer: was the day's candidate published, and why (not)."""
    if not decision:
        return f"<p class='decision'><b>No candidate registered for {html.escape(ds)}</b> " \
               "(training or evaluation did not complete; see the run's task logs).</p>"
    status = str(decision.get("status"))
    reason = decision.get("reason") or ("every gate check passed" if status == "published"
                                        else "no reason recorded")
    what = {"published": "serves from the next day", "rejected": "the current policy keeps "
            "serving", "rolled_back": "taken out of service", "candidate": "not yet gated"}
    return (f"<p class='decision'><b>{html.escape(status.upper())}</b>: "
            f"{html.escape(str(decision.get('model_version')))} "
            f"({html.escape(what.get(status, ''))}). Reason: {html.escape(str(reason))}</p>")


def dq_summary(dq: pd.DataFrame) -> pd.DataFrame:
    """Per bronze table: rows landed, accepted, quarantined, and the rules that fired."""
    if dq.empty:
        return dq
    out = []
    for table, g in dq.groupby("table_name", sort=True):
        total = g[g["rule"] == "_all"]
        landed = int(total["rows_checked"].iloc[0]) if len(total) else None
        quarantined = int(total["rows_failed"].iloc[0]) if len(total) else None
        fired = g[(g["rule"] != "_all") & (g["rows_failed"] > 0)]
        out.append({"table": table, "landed": landed,
                    "accepted": None if landed is None else landed - (quarantined or 0),
                    "quarantined": quarantined,
                    "rules that fired": ", ".join(f"{r} {n}" for r, n in
                                                  zip(fired["rule"], fired["rows_failed"]))
                    or "-"})
    return pd.DataFrame(out)


def provenance(decision: dict | None) -> str:
    """Code, seed, data versions and artifact checksum of the day's candidate."""
    if not decision:
        return "<p><em>no candidate registered</em></p>"
    try:
        profile = json.loads(decision.get("config_json") or "{}").get("profile")
    except ValueError:
        profile = None
    rows = pd.DataFrame([{"model_version": decision.get("model_version"),
                          "algo": decision.get("algo"), "profile": profile,
                          "seed": decision.get("seed"), "git_sha": decision.get("git_sha"),
                          "data_versions": decision.get("data_versions"),
                          "artifact_sha256": decision.get("artifact_sha256")}])
    return _table(rows)


def write_index(reports: Path, registry: pd.DataFrame) -> Path:
    """<reports>/index.html: every day that has a report, newest first, with its decision."""
    by_day = {r["ds"]: r for r in registry.to_dict("records")} if not registry.empty else {}
    rows = []
    for day in sorted((p.name for p in reports.iterdir() if (p / "report.html").exists()),
                      reverse=True):
        r = by_day.get(day, {})
        rows.append(f"<tr><td><a href='{html.escape(day)}/report.html'>{html.escape(day)}</a>"
                    f"</td><td>{html.escape(str(r.get('model_version', '-')))}</td>"
                    f"<td>{html.escape(str(r.get('status', '-')))}</td>"
                    f"<td>{html.escape(str(r.get('reason') or '-'))}</td></tr>")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>mtf-rl reports</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px}</style>"
            "</head><body><h1>mtf-rl nightly reports</h1><table><tr><th>day</th>"
            "<th>candidate</th><th>decision</th><th>reason</th></tr>" + "".join(rows)
            + "</table></body></html>")
    path = reports / "index.html"
    path.write_text(page)
    return path


def render_report(data: ReportData, out_dir: Path) -> Path:
    """Write the PNG plots and report.html into out_dir; return the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        ("Training curves (candidate trained on this day)",
         plot_train_curves(data.train_curves, out_dir / "train_curves.png"),
         "no train_metrics.jsonl for this day"),
        ("Offline metrics by day (candidate vs current)",
         plot_offline_history(data.offline, out_dir / "offline_history.png"),
         "no offline metrics yet"),
        ("Published fusion weights per objective (pairs of this day)",
         plot_weights(data.weights, out_dir / "weights.png"),
         "no fusion weights published for this day"),
        ("Online UVC / UDT by A/B arm, day over day",
         plot_online(data.online, out_dir / "online.png"), "no online metrics yet"),
    ]
    parts = [f"<h1>mtf-rl nightly report {html.escape(data.ds)}</h1>",
             headline(data.decision, data.ds),
             "<h2>Online A/B of the day against the holdout (fixed weights)</h2>",
             ab_section(data.ab), "<h2>Candidate vs current</h2>",
             _table(data.comparison), "<h2>Data quality of the day's logs</h2>",
             _table(dq_summary(data.dq))]
    for title, png, missing in sections:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f'<img src="{png.name}" alt="{html.escape(title)}">' if png
                     else f"<p><em>{html.escape(missing)}</em></p>")
    parts += ["<h2>Online metrics</h2>", _table(data.online),
              "<h2>Provenance</h2>", provenance(data.decision),
              '<p><a href="../index.html">all days</a></p>']
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>mtf-rl report {html.escape(data.ds)}</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{padding:2px 8px;border-bottom:1px solid #ddd;font-size:13px}"
            "img{max-width:100%}</style></head><body>" + "\n".join(parts) + "</body></html>")
    path = out_dir / "report.html"
    path.write_text(page)
    return path


def reports_dir(cfg: PipelineConfig, ds: str) -> Path:
    """<local_dir>/_reports/<ds> (a local or mounted path: the report is for people)."""
    return cfg.storage.report_dir(ds)


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> Path:
    path = render_report(collect(spark, cfg, ds), reports_dir(cfg, ds))
    db = cfg.storage.database
    write_index(path.parent.parent, spark.sql(
        f"SELECT ds, model_version, status, reason FROM {db}.policy_registry "
        f"ORDER BY ds, model_version").toPandas().drop_duplicates("ds", keep="last"))
    log.info("report for %s: %s", ds, path)
    print(f"mtf-rl report: {path}", flush=True)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("report", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
