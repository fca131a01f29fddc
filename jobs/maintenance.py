"""Job `maintenance`: OPTIMIZE the recent partitions and VACUUM every Delta table.

Why: each daily `replaceWhere` writes a partition's files anew (a few small files per
task and day) and leaves the replaced files behind for time travel. OPTIMIZE bin-packs a
partition's small files into few large ones (fewer files to open for Petastorm and SQL);
VACUUM deletes files that no table version younger than the retention references.

The retention is derived from the config, not guessed: the trainer pins the Delta version
of `enhanced_state` it read (`snapshot.json`, `policy_registry.data_versions`), and a model
trained any day of the training window must stay reproducible, so files are kept for
`data.train_window_days + RETENTION_MARGIN_DAYS` days, and never less than Delta's own
safety floor of 7 days (below that Delta refuses to VACUUM, because a running reader or
writer could still need the files). Delta's log retention (30 days by default) must
exceed it for time travel to work; it is checked, not changed.

    spark-submit jobs/maintenance.py --ds 2026-01-08 [--days 7] [--retain-days N]
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence

from pyspark.sql import SparkSession

from core.ds import validate_ds
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from store.tables import TABLES, ensure_tables, qualified

log = logging.getLogger("jobs.maintenance")

RETENTION_MARGIN_DAYS = 2
"""Days kept beyond the training window: a late rerun or an investigation of the oldest
model in the window can still read its snapshot."""
DELTA_MIN_RETENTION_DAYS = 7
"""Delta's default `deletedFileRetentionDuration`, below which VACUUM refuses to run."""
DELTA_LOG_RETENTION_DAYS = 30
"""Delta's default `logRetentionDuration`: time travel needs the log as well as the files."""


def retention_days(cfg: PipelineConfig, override: int | None = None) -> int:
    """Days of files VACUUM keeps: the training window plus a margin, at least Delta's floor."""
    days = override if override is not None else (cfg.data.train_window_days
                                                   + RETENTION_MARGIN_DAYS)
    return max(days, DELTA_MIN_RETENTION_DAYS)


def optimize_window(ds: str, days: int) -> tuple[str, str]:
    """First and last day (inclusive) of the partitions OPTIMIZE compacts."""
    end = dt.date.fromisoformat(validate_ds(ds))
    return (end - dt.timedelta(days=days - 1)).isoformat(), end.isoformat()


def _log_retention_days(spark: SparkSession, table: str) -> float:
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()}
    value = props.get("delta.logRetentionDuration", f"interval {DELTA_LOG_RETENTION_DAYS} days")
    m = re.match(r"interval\s+(\d+)\s+(day|hour)s?", value.strip(), re.I)
    if not m:
        return float(DELTA_LOG_RETENTION_DAYS)
    n = float(m.group(1))
    return n if m.group(2).lower() == "day" else n / 24.0


def maintain_table(spark: SparkSession, db: str, table: str, start: str, end: str,
                   retain_days: int) -> dict:
    """OPTIMIZE (the window's partitions if partitioned by ds) then VACUUM one table."""
    name = qualified(db, table)
    detail = spark.sql(f"DESCRIBE DETAIL {name}").first()
    where = f" WHERE ds >= '{start}' AND ds <= '{end}'" if "ds" in detail["partitionColumns"] \
        else ""
    metrics = spark.sql(f"OPTIMIZE {name}{where}").first()["metrics"]
    if _log_retention_days(spark, name) < retain_days:
        log.warning("%s: delta.logRetentionDuration is shorter than the VACUUM retention "
                    "(%d days): time travel ends earlier than the files are kept", name,
                    retain_days)
    spark.sql(f"VACUUM {name} RETAIN {retain_days * 24} HOURS")
    after = spark.sql(f"DESCRIBE DETAIL {name}").first()
    out = {"files_before": int(detail["numFiles"]), "files_after": int(after["numFiles"]),
           "files_added": int(metrics["numFilesAdded"]),
           "files_removed": int(metrics["numFilesRemoved"]),
           "optimized": where.strip() or "all partitions"}
    log.info("%s: %s", name, out)
    return out


def run(spark: SparkSession, cfg: PipelineConfig, ds: str, days: int = 7,
        retain_days: int | None = None, tables: Sequence[str] = TABLES) -> dict[str, dict]:
    db = cfg.storage.database
    ensure_tables(spark, db)
    start, end = optimize_window(ds, days)
    keep = retention_days(cfg, retain_days)
    log.info("OPTIMIZE ds in [%s, %s]; VACUUM keeps %d days (train window %d days)", start, end,
             keep, cfg.data.train_window_days)
    return {t: maintain_table(spark, db, t, start, end, keep) for t in tables}


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p):
        p.add_argument("--days", type=int, default=7, help="days of partitions to OPTIMIZE")
        p.add_argument("--retain-days", type=int, default=None,
                       help="VACUUM retention in days (default: train window + margin, "
                            f">= {DELTA_MIN_RETENTION_DAYS})")

    return spark_job_main("maintenance", __doc__, argv, lambda spark, cfg, a: run(
        spark, cfg, a.ds, a.days, a.retain_days), extra=extra)


if __name__ == "__main__":
    raise SystemExit(main())
