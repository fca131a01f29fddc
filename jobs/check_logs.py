"""Job `check_logs`: fail unless every bronze table's raw logs for day ds have landed.

Airflow retries it with a delay, so it plays the part of `wait_for_logs`.

    spark-submit jobs/check_logs.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pyspark.sql import SparkSession

from jobs.common import parse_job_args
from jobs.landing import missing_landings
from jobs.spark import get_spark
from mtf.config import PipelineConfig

log = logging.getLogger("jobs.check_logs")


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> None:
    missing = missing_landings(spark, cfg, ds)
    if missing:
        raise RuntimeError(f"logs for ds={ds} not landed yet (no _SUCCESS marker): "
                           f"{', '.join(missing)}")
    log.info("every bronze table's logs for %s have landed", ds)


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_job_args(__doc__.splitlines()[0], argv)
    run(get_spark(cfg, f"mtf-check-logs-{args.ds}"), cfg, args.ds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
