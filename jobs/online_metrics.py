"""Job `online_metrics`: what users did on day ds in each A/B arm (from bronze).

UVC = valid consumptions per active user, UDT = watch seconds per active user
(docs/ALGORITHM.md section 7), per A/B arm and serving policy version, with their standard
errors over the active users, and each arm's lift against the `holdout` arm (the fixed
weights) with a 95% CI (core/ab.py). An arm worse than the holdout beyond
`ab.regression_threshold` is flagged `regression`.

The day's A/B summary also goes to `<local_dir>/_reports/<ds>/online_ab.json`, which the
Airflow task's success callback reads to send the `online_regression` alert
(mtf/alerts.py).

    spark-submit jobs/online_metrics.py --ds 2026-01-01
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.ab import HOLDOUT, is_regression, lift
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from store.tables import ensure_tables, read_partition, write_partition

log = logging.getLogger("jobs.online_metrics")
METRICS = ("uvc", "udt")


def arm_metrics(requests: DataFrame, feedback: DataFrame) -> DataFrame:
    """One row per (ds, arm, policy_version): users, sessions, requests, uvc, udt, their
    standard errors over users, requests_per_session."""
    per_request = feedback.groupBy("request_id").agg(
        F.sum("valid").alias("valid"), F.sum("watch_time_s").alias("watch"))
    r = requests.join(per_request, "request_id", "left").fillna(0, ["valid", "watch"])
    keys = ["ds", "arm", "policy_version"]
    per_user = r.groupBy(*keys, "user_id").agg(
        F.countDistinct("session_id").alias("sessions"), F.count("*").alias("requests"),
        F.sum("valid").cast("double").alias("valid"), F.sum("watch").alias("watch"))
    n = F.col("users")
    return (per_user.groupBy(*keys).agg(
        F.count("*").alias("users"), F.sum("sessions").alias("sessions"),
        F.sum("requests").alias("requests"),
        F.avg("valid").alias("uvc"), F.avg("watch").alias("udt"),
        F.stddev_samp("valid").alias("_sd_valid"), F.stddev_samp("watch").alias("_sd_watch"))
        .select(*keys, "users", "sessions", "requests", "uvc", "udt",
                (F.col("requests") / F.col("sessions")).alias("requests_per_session"),
                (F.col("_sd_valid") / F.sqrt(n)).alias("uvc_se"),
                (F.col("_sd_watch") / F.sqrt(n)).alias("udt_se")))


def with_lifts(rows: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """Each arm row with `<m>_lift`, `<m>_lift_low`, `<m>_lift_high` against the holdout
    (null for the holdout itself and on a day without one) and `regression`."""
    base = [r for r in rows if r["arm"] == HOLDOUT]
    out = []
    for r in rows:
        r = dict(r)
        r["regression"] = False
        for m in METRICS:
            lf = None
            if base and r["arm"] != HOLDOUT:
                b = base[0]
                lf = lift(r[m], r[f"{m}_se"] or 0.0, b[m], b[f"{m}_se"] or 0.0)
            r[f"{m}_lift"] = None if lf is None else lf.value
            r[f"{m}_lift_low"] = None if lf is None else lf.low
            r[f"{m}_lift_high"] = None if lf is None else lf.high
            r["regression"] = r["regression"] or is_regression(lf, threshold)
        out.append(r)
    return out


def build_online_metrics(requests: DataFrame, feedback: DataFrame, threshold: float
                         ) -> tuple[DataFrame, list[dict[str, Any]]]:
    """The day's online_metrics rows (a few: one per arm and policy, by arm), as a frame to
    write and as the dicts the A/B summary holds."""
    per_arm = arm_metrics(requests, feedback)
    rows = with_lifts([r.asDict() for r in per_arm.orderBy("arm", "policy_version").collect()],
                      threshold)
    schema = T.StructType([*per_arm.schema.fields,
                           *(T.StructField(f"{m}_lift{s}", T.DoubleType())
                             for m in METRICS for s in ("", "_low", "_high")),
                           T.StructField("regression", T.BooleanType())])
    df = requests.sparkSession.createDataFrame(
        [tuple(r[f.name] for f in schema.fields) for r in rows], schema)
    return df, rows


def ab_summary(ds: str, rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """What the regression alert and the report read: the arms, and the regressed ones."""
    return {"ds": ds, "threshold": threshold, "arms": rows,
            "regressions": [r["arm"] for r in rows if r["regression"]]}


def ab_summary_path(cfg: PipelineConfig, ds: str) -> Path:
    """<local_dir>/_reports/<ds>/online_ab.json: the day's A/B summary."""
    return cfg.storage.report_dir(ds) / "online_ab.json"


def write_ab_summary(cfg: PipelineConfig, ds: str, rows: list[dict[str, Any]]) -> Path:
    """The day's A/B summary (ab_summary_path), replaced whole (what the alert reads)."""
    path = ab_summary_path(cfg, ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(ab_summary(ds, rows, cfg.ab.regression_threshold), indent=1,
                              default=str))
    tmp.replace(path)
    return path


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> int:
    db = cfg.storage.database
    ensure_tables(spark, db)
    df, rows = build_online_metrics(read_partition(spark, db, "raw_requests", ds),
                                    read_partition(spark, db, "raw_feedback", ds),
                                    cfg.ab.regression_threshold)
    n = write_partition(df, db, "online_metrics", ds)
    write_ab_summary(cfg, ds, rows)
    for r in rows:
        log.info("arm %s (%s): %d users, uvc %.4f +- %.4f, udt %.1f, uvc lift %s%s",
                 r["arm"], r["policy_version"], r["users"], r["uvc"], r["uvc_se"] or 0.0,
                 r["udt"], "-" if r["uvc_lift"] is None else f"{r['uvc_lift']:+.2%}",
                 "  REGRESSION" if r["regression"] else "")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("online-metrics", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
