"""Maintenance (jobs/maintenance.py): retention from the training window, OPTIMIZE compacts
only the window's partitions, VACUUM runs with that retention."""

from __future__ import annotations

import dataclasses

import pytest

DB = "mtf_maint_test"


def test_retention_keeps_training_window_and_delta_floor(cfg):
    from jobs.maintenance import DELTA_MIN_RETENTION_DAYS, optimize_window, retention_days

    assert retention_days(cfg) == DELTA_MIN_RETENTION_DAYS  # test window 2 days + margin < 7
    wide = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, train_window_days=30))
    assert retention_days(wide) == 32
    assert retention_days(cfg, override=10) == 10
    assert optimize_window("2026-01-08", 7) == ("2026-01-02", "2026-01-08")
    assert optimize_window("2026-03-01", 1) == ("2026-03-01", "2026-03-01")


@pytest.mark.spark
def test_optimize_compacts_window_partitions_only(spark):
    from jobs.maintenance import maintain_table

    spark.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")
    spark.sql(f"CREATE DATABASE {DB}")
    spark.sql(f"CREATE TABLE {DB}.online_metrics USING DELTA PARTITIONED BY (ds) "
              f"AS SELECT * FROM mtf.online_metrics WHERE false")
    schema = spark.table(f"{DB}.online_metrics").schema
    for ds in ("2026-01-01", "2026-01-05"):
        for i in range(2):  # two commits: two small files per partition
            row = {"ds": ds, "arm": "current", "policy_version": f"v{i}", "users": 1,
                   "sessions": 1, "requests": 1, "uvc": 1.0, "udt": 1.0,
                   "requests_per_session": 1.0}
            spark.createDataFrame([tuple(row.get(f.name) for f in schema.fields)], schema) \
                .write.format("delta").mode("append").saveAsTable(f"{DB}.online_metrics")
    out = maintain_table(spark, DB, "online_metrics", "2026-01-04", "2026-01-05", 7)
    assert out["files_before"] == 4
    assert (out["files_removed"], out["files_added"]) == (2, 1)  # only 2026-01-05 compacted
    assert out["files_after"] == 3
    assert spark.table(f"{DB}.online_metrics").count() == 4
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {DB}.online_metrics").collect()]
    assert "OPTIMIZE" in ops and any(op.startswith("VACUUM") for op in ops)
