"""Job `online_metrics`: what users did on day ds under each serving policy (from bronze).

UVC = valid consumptions per active user, UDT = watch seconds per active user
(docs/ALGORITHM.md section 7), per serving policy version.

    spark-submit jobs/online_metrics.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from store.tables import ensure_tables, read_partition, write_partition

log = logging.getLogger("jobs.online_metrics")


def build_online_metrics(requests: DataFrame, feedback: DataFrame) -> DataFrame:
    per_request = feedback.groupBy("request_id").agg(
        F.sum("valid").alias("valid"), F.sum("watch_time_s").alias("watch"))
    r = requests.join(per_request, "request_id", "left").fillna(0, ["valid", "watch"])
    return (r.groupBy("ds", "policy_version").agg(
        F.countDistinct("user_id").alias("users"),
        F.countDistinct("session_id").alias("sessions"),
        F.count("*").alias("requests"),
        F.sum("valid").alias("valid"), F.sum("watch").alias("watch"))
        .select("ds", "policy_version", "users", "sessions", "requests",
                (F.col("valid") / F.col("users")).alias("uvc"),
                (F.col("watch") / F.col("users")).alias("udt"),
                (F.col("requests") / F.col("sessions")).alias("requests_per_session")))


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> int:
    db = cfg.storage.database
    ensure_tables(spark, db)
    df = build_online_metrics(read_partition(spark, db, "raw_requests", ds),
                              read_partition(spark, db, "raw_feedback", ds))
    return write_partition(df, db, "online_metrics", ds)


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("online-metrics", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
