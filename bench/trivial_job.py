"""A Spark step that does no work: the job entry every step goes through (arguments,
config, logging, session), one `SELECT 1`, exit. bench/bench_spark_service.py times it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.entry import spark_job_main  # noqa: E402


def main(argv=None) -> int:
    return spark_job_main("trivial", __doc__, argv,
                          lambda spark, cfg, a: spark.sql("SELECT 1").collect())


if __name__ == "__main__":
    raise SystemExit(main())
