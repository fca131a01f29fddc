"""Job `check_logs`: fail unless every bronze table has rows for day ds.

Airflow retries it with a delay, so it plays the part of `wait_for_logs`.

    spark-submit jobs/check_logs.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import SparkSession

from jobs.common import parse_job_args
from jobs.spark import get_spark
from jobs.tables import BRONZE, ensure_tables, read_partition
from mtf.config import PipelineConfig

log = logging.getLogger("jobs.check_logs")


def missing_partitions(spark: SparkSession, db: str, ds: str) -> list[str]:
    return [t for t in BRONZE if read_partition(spark, db, t, ds).limit(1).count() == 0]


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> None:
    ensure_tables(spark, cfg.storage.database)
    missing = missing_partitions(spark, cfg.storage.database, ds)
    if missing:
        raise RuntimeError(f"logs for ds={ds} not there yet: no rows in {', '.join(missing)}")
    log.info("all bronze partitions present for %s", ds)


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_job_args(__doc__.splitlines()[0], argv)
    run(get_spark(cfg, f"mtf-check-logs-{args.ds}"), cfg, args.ds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
