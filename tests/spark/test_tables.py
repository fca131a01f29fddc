"""Table registry: ds validation, DDL constraints, idempotent partition writes."""

from __future__ import annotations

import pytest

from core.ds import validate_ds
from store.tables import qualified

pytestmark = pytest.mark.spark


@pytest.mark.parametrize("bad", ["2026-1-01", "2026-02-30", "2026-01-01' OR '1'='1",
                                 "../../etc", "", "20260101"])
def test_validate_ds_rejects(bad):
    with pytest.raises(ValueError):
        validate_ds(bad)


def test_qualified_rejects_unknown_tables():
    assert qualified("mtf", "raw_users") == "mtf.raw_users"
    with pytest.raises(ValueError):
        qualified("mtf", "raw_users; DROP TABLE x")
    with pytest.raises(ValueError):
        qualified("mtf; x", "raw_users")


def _metrics(spark, ds, n):
    return spark.createDataFrame(
        [(ds, "run", "dq", "rule", "soft", i, 0) for i in range(n)],
        "ds string, run_id string, table_name string, rule string, severity string, "
        "rows_checked bigint, rows_failed bigint")


def test_write_partition_replaces_only_its_day(spark, cfg):
    from store.tables import write_partition

    db = cfg.storage.database
    assert write_partition(_metrics(spark, "2030-01-01", 3), db, "dq_metrics", "2030-01-01") == 3
    assert write_partition(_metrics(spark, "2030-01-02", 2), db, "dq_metrics", "2030-01-02") == 2
    # rerun of day 1 with different content replaces day 1 only
    write_partition(_metrics(spark, "2030-01-01", 4), db, "dq_metrics", "2030-01-01")
    counts = {r["ds"]: r["n"] for r in spark.sql(
        f"SELECT ds, count(*) AS n FROM {db}.dq_metrics WHERE ds IN ('2030-01-01', '2030-01-02') "
        f"GROUP BY ds"
    ).collect()}
    assert counts == {"2030-01-01": 4, "2030-01-02": 2}


def test_write_partition_refuses_rows_of_another_day(spark, cfg):
    from store.tables import write_partition

    with pytest.raises(Exception, match="(?i)replaceWhere|does not conform|predicate"):
        write_partition(_metrics(spark, "2030-02-02", 1), cfg.storage.database, "dq_metrics",
                        "2030-02-01")


def test_write_partition_refuses_columns_the_table_lacks(spark, cfg):
    """A table created by an older DDL: a column the job writes must not be dropped
    silently (the day is not written); `_` helper columns are the job's own."""
    from pyspark.sql import functions as F

    from store.tables import SchemaMismatchError, partition_rows, write_partition

    db = cfg.storage.database
    df = _metrics(spark, "2030-02-05", 2)
    with pytest.raises(SchemaMismatchError, match=r"\['cand_mask'\]"):
        write_partition(df.withColumn("cand_mask", F.lit(1.0)), db, "dq_metrics", "2030-02-05")
    assert partition_rows(spark, db, "dq_metrics", "2030-02-05") == 0
    assert write_partition(df.withColumn("_rules", F.lit("x")), db, "dq_metrics",
                           "2030-02-05") == 2


def test_check_constraints_are_enforced(spark, cfg):
    from store.tables import write_partition

    db = cfg.storage.database
    df = spark.sql(
        "SELECT '2030-03-01' AS ds, 'r' AS request_id, 's' AS session_id, 1L AS user_id, "
        "0 AS request_index, 0L AS ts_ms, 25 AS hour, 0 AS device, 0 AS network, "
        "'current' AS arm, 'pv' AS policy_version, array_repeat(cast(0 as float), 10) AS action, "
        "array_repeat(cast(0 as float), 10) AS mu_bp, array_repeat(cast(0 as float), 10) AS noise,"
        " 0.15D AS explore_half_width, 50 AS n_candidates, "
        "array_repeat(cast(0 as float), 7) AS cand_pred_mean, "
        "array_repeat(cast(0 as float), 7) AS cand_pred_std")
    with pytest.raises(Exception, match="(?i)hour_range|CHECK constraint"):
        write_partition(df, db, "raw_requests", "2030-03-01")
    assert spark.sql(f"SELECT count(*) FROM {db}.raw_requests WHERE ds = '2030-03-01'"
                     ).first()[0] == 0


def test_ensure_tables_is_idempotent(spark, cfg):
    from store.tables import TABLES, ensure_tables

    ensure_tables(spark, cfg.storage.database)
    names = {r["tableName"] for r in spark.sql(f"SHOW TABLES IN {cfg.storage.database}").collect()}
    assert set(TABLES) <= names


def test_constraints_fold_into_the_create_statement():
    from store.tables import _create_with_constraints

    create = "CREATE TABLE IF NOT EXISTS d.t (x INT) USING DELTA\nTBLPROPERTIES ('a' = 'b')"
    out = _create_with_constraints(create, [("pos", "x > 0"), ("v", "s IN ('a', 'b')")])
    assert out == ("CREATE TABLE IF NOT EXISTS d.t (x INT) USING DELTA\nTBLPROPERTIES ('a' = "
                   "'b', 'delta.constraints.pos' = 'x > 0', "
                   "'delta.constraints.v' = 's IN (\\'a\\', \\'b\\')')")
    assert _create_with_constraints("CREATE TABLE t (x INT)", [("p", "x > 0")]) == (
        "CREATE TABLE t (x INT)\nTBLPROPERTIES ('delta.constraints.p' = 'x > 0')")
    assert _create_with_constraints(create, []) == create


def test_every_ddl_constraint_is_on_the_fresh_table(spark, cfg):
    """What ensure_tables created equals what the DDL's ALTER ... ADD CONSTRAINT says."""
    from store.tables import _CREATE_RE, _checks, _ddl_units

    db = cfg.storage.database
    for create, *rest in _ddl_units(db):
        table = f"{db}.{_CREATE_RE.search(create).group(1)}"
        want = {f"delta.constraints.{name}": expr for name, expr in _checks(rest)}
        props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()
                 if r["key"].startswith("delta.constraints.")}
        assert props == want, table
