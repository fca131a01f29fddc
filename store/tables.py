"""The one table registry: names, DDL application, partition reads and idempotent writes."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from core.ds import validate_ds
from core.errors import UserError
from core.settings import PROJECT_ROOT

if TYPE_CHECKING:  # light at import: the DAG files read the table names
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DDL_DIR = PROJECT_ROOT / "sql" / "ddl"

BRONZE = ("raw_users", "raw_items", "raw_requests", "raw_exposures", "raw_feedback",
          "raw_candidates")
SILVER = ("enhanced_state", "user_state")
QUARANTINE = tuple(f"{t}_quarantine" for t in BRONZE)
GOLD = ("policy_registry", "fusion_weights", "offline_metrics", "online_metrics", "dq_metrics",
        "experiment_results")
TABLES = BRONZE + QUARANTINE + SILVER + GOLD

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def qualified(db: str, table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
    if not _IDENT_RE.match(db):
        raise ValueError(f"bad database name {db!r}")
    return f"{db}.{table}"


def _statements(text: str, db: str) -> list[str]:
    text = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    # statements end with ';' at the end of a line (so ';' inside a comment string is fine)
    return [s.strip().replace("{db}", db) for s in re.split(r";[ \t]*(?:\n|$)", text)
            if s.strip()]


def _ddl_units(db: str) -> list[list[str]]:
    """The statements of each table, in file order. A file that mentions `{bronze}` is a
    template, stamped once per bronze table (the five quarantine tables share one DDL)."""
    units = []
    for path in sorted(DDL_DIR.glob("*.sql")):
        text = path.read_text()
        for bronze in (BRONZE if "{bronze}" in text else (None,)):
            units.append(_statements(text.replace("{bronze}", bronze or ""), db))
    return units


_CONSTRAINT_RE = re.compile(r"ALTER TABLE (\S+) ADD CONSTRAINT (\w+) CHECK \((.*)\)\s*$",
                            re.I | re.S)
_CREATE_RE = re.compile(r"CREATE TABLE IF NOT EXISTS \S+\.(\w+)", re.I)
_TBLPROPS_RE = re.compile(r"TBLPROPERTIES\s*\((.*)\)\s*$", re.I | re.S)


def _checks(statements: list[str]) -> list[tuple[str, str]]:
    """(name, expression) of every `ALTER TABLE ... ADD CONSTRAINT ... CHECK` among them."""
    return [(m.group(2).lower(), m.group(3).strip()) for s in statements
            if (m := _CONSTRAINT_RE.match(s))]


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _create_with_constraints(create: str, checks: list[tuple[str, str]]) -> str:
    """The CREATE statement with its CHECK constraints as `delta.constraints.<name>` table
    properties: that is how Delta stores an added constraint, and on a new (empty) table it
    is the same table as CREATE + ALTER ... ADD CONSTRAINT, without the scan and the commit
    each ALTER costs (two dozen of them made a fresh catalog take about 40 s longer)."""
    if not checks:
        return create
    props = ", ".join(f"{sql_string('delta.constraints.' + n)} = {sql_string(e)}"
                      for n, e in checks)
    m = _TBLPROPS_RE.search(create)
    if m:
        return f"{create[:m.start(1)]}{m.group(1)}, {props}{create[m.end(1):]}"
    return f"{create}\nTBLPROPERTIES ({props})"


def ensure_tables(spark: SparkSession, db: str) -> None:
    """Create every missing table (DDL in sql/ddl) with its CHECK constraints, then the
    views of sql/views. Idempotent; tables that exist are left alone (one catalog call when
    everything is there)."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    existing = {r["tableName"] for r in spark.sql(f"SHOW TABLES IN {db}").collect()}
    for create, *rest in _ddl_units(db):
        m = _CREATE_RE.search(create)
        if m and m.group(1) in existing:
            continue
        spark.sql(_create_with_constraints(create, _checks(rest)))
        for stmt in rest:
            if not _CONSTRAINT_RE.match(stmt):
                spark.sql(stmt)
    from store.views import ensure_views  # the analysts' views over these tables

    ensure_views(spark, db)


def table_location(spark: SparkSession, db: str, table: str) -> str:
    return spark.sql(f"DESCRIBE DETAIL {qualified(db, table)}").first()["location"]


def table_version(spark: SparkSession, db: str, table: str) -> int:
    return int(spark.sql(f"DESCRIBE HISTORY {qualified(db, table)} LIMIT 1").first()["version"])


def read_partition(spark: SparkSession, db: str, table: str, ds: str) -> DataFrame:
    return spark.table(qualified(db, table)).where(f"ds = '{validate_ds(ds)}'")


def partition_rows(spark: SparkSession, db: str, table: str, ds: str) -> int:
    """Rows of the `ds` partition of `table` at its current version."""
    return int(read_partition(spark, db, table, ds).count())


T = TypeVar("T")

# Delta's optimistic concurrency: a commit that lost a race to another writer of the same
# table (error classes DELTA_CONCURRENT_*, or the exception names on older paths)
_CONFLICTS = ("DELTA_CONCURRENT", "ConcurrentAppendException", "ConcurrentDeleteReadException",
              "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
              "MetadataChangedException")


def is_conflict(e: BaseException) -> bool:
    """True when `e` is a Delta commit conflict with a concurrent writer."""
    text = f"{type(e).__name__} {e}"
    return any(c in text for c in _CONFLICTS)


def retry_on_conflict(fn: Callable[[], T], what: str, tries: int = 6) -> T:
    """Run an idempotent Delta write, again after a commit conflict with another writer
    (two days, or a rerun and a run, writing one table at once), with jittered backoff.
    Safe only for writes whose repetition gives the same table: a replaceWhere overwrite
    of one partition, a MERGE on a key."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as e:
            if attempt + 1 == tries or not is_conflict(e):
                raise
            wait = 0.5 * 2 ** attempt * (1 + random.random())
            log.warning("%s: lost a commit race to a concurrent writer (%s); retrying in "
                        "%.1f s", what, str(e).strip().splitlines()[0][:200], wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


class SchemaMismatchError(UserError, RuntimeError):
    """A job writes columns its table does not have."""


def write_partition(df: DataFrame, db: str, table: str, ds: str) -> int:
    """Atomically replace the `ds` partition of `table` with `df` (Delta replaceWhere).

    One Delta commit: readers see the old partition or the new one, never a mix, and a
    rerun of the same day writes the same rows. replaceWhere also checks that every
    written row belongs to the partition. Returns the rows the partition holds after the
    write, counted in the partition itself: never a number taken from the table's latest
    commit, which may be another day's (an empty write into an empty partition makes no
    commit at all)."""
    validate_ds(ds)
    spark = df.sparkSession
    columns = spark.table(qualified(db, table)).columns  # one schema lookup (an RPC on Connect)
    # a column the table lacks (a table created by an older DDL) must not vanish silently;
    # `_`-prefixed columns are a job's own helpers
    extra = [c for c in df.columns if c not in columns and not c.startswith("_")]
    if extra:
        raise SchemaMismatchError(
            f"{db}.{table} lacks the columns {extra} that this job writes: the table was "
            f"created by an older DDL (sql/ddl); add them (ALTER TABLE {db}.{table} ADD "
            f"COLUMNS ...) or rebuild the table, see docs/OPERATIONS.md")
    df = df.select(*columns)  # DDL column order, fails loudly on a missing column
    location = table_location(spark, db, table)
    retry_on_conflict(lambda: (df.write.format("delta").mode("overwrite")
                               .option("replaceWhere", f"ds = '{ds}'").save(location)),
                      f"write {db}.{table} ds={ds}")
    n = partition_rows(spark, db, table, ds)
    log.info("wrote %s rows to %s.%s ds=%s", n, db, table, ds)
    return n
