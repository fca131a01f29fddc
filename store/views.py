"""Analyst views (sql/views/*.sql) registered in the catalog next to the tables.

Analysts query stable, documented views instead of re-deriving the pivots and joins
of the long-format gold tables: the latest published policy, offline metrics per day and
algorithm, online metrics per day and serving policy, and candidate vs current per day.
Each file holds one `CREATE OR REPLACE VIEW {db}.<name> ... ;` statement; views hold no
data, so replacing them is cheap and always safe. A view's SQL text is fingerprinted in
its `mtf.sql_sha256` property, and `ensure_views` only rewrites views whose file changed,
so calling it from every job costs one catalog listing when nothing changed.

The job `jobs/views.py` (re)creates them on demand and opens the analysts' shell (`make sql`).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from core.settings import PROJECT_ROOT
from store.config import HasStorage

log = logging.getLogger(__name__)

VIEWS_DIR = PROJECT_ROOT / "sql" / "views"
SHA_PROPERTY = "mtf.sql_sha256"
_VIEW_RE = re.compile(r"CREATE OR REPLACE VIEW \{db\}\.(\w+)\s", re.I)
_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def view_statement(path: Path, db: str) -> tuple[str, str, str]:
    """(view name, CREATE OR REPLACE VIEW statement for database `db`, sha256 of the file)
    of one view file.

    The statement carries the file's sha256 in the TBLPROPERTIES SHA_PROPERTY."""
    text = path.read_text()
    m = _VIEW_RE.search(text)
    if not m:
        raise ValueError(f"{path.name}: expected 'CREATE OR REPLACE VIEW {{db}}.<name>'")
    body = "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith("--"))
    body = body.strip().rstrip(";").strip()
    if ";" in body:
        raise ValueError(f"{path.name}: one statement per view file")
    sha = hashlib.sha256(text.encode()).hexdigest()
    # TBLPROPERTIES goes before AS in Spark's CREATE VIEW grammar
    head, sep, query = body.partition("\nAS\n")
    if not sep:
        raise ValueError(f"{path.name}: put AS on a line of its own before the query")
    stmt = f"{head}\nTBLPROPERTIES ('{SHA_PROPERTY}' = '{sha}')\nAS\n{query}"
    return m.group(1), stmt.replace("{db}", db), sha


def view_names() -> list[str]:
    return [view_statement(p, "db")[0] for p in sorted(VIEWS_DIR.glob("*.sql"))]


def ensure_views(spark: SparkSession, db: str, force: bool = False) -> list[str]:
    """Create or replace every view of sql/views in `db` whose SQL changed (or all when
    `force`). Idempotent. Returns the names of the views (re)created."""
    if not _IDENT_RE.match(db):
        raise ValueError(f"bad database name {db!r}")
    existing = {r["viewName"] for r in spark.sql(f"SHOW VIEWS IN {db}").collect()}
    created = []
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        name, stmt, sha = view_statement(path, db)
        if name in existing and not force:
            props = {r["key"]: r["value"]
                     for r in spark.sql(f"SHOW TBLPROPERTIES {db}.{name}").collect()}
            if props.get(SHA_PROPERTY) == sha:
                continue
        spark.sql(stmt)
        created.append(name)
    if created:
        log.info("views (re)created in %s: %s", db, ", ".join(created))
    return created


class QueryError(Exception):
    """An analyst's statement Spark refused (a typo, a missing table): Spark's message."""


def run_query(spark: SparkSession, stmt: str, limit: int) -> tuple[list[str], list]:
    """Column names and at most `limit` rows of one SQL statement (`mtf sql`, the SQL
    shell); a Spark error becomes QueryError with the first line of Spark's message."""
    from pyspark.errors import PySparkException

    try:
        df = spark.sql(stmt)
        rows = df.limit(limit).collect()
        return df.columns, rows
    except PySparkException as e:
        raise QueryError(str(e).strip().splitlines()[0]) from None


def spark_sql_command(cfg: HasStorage) -> list[str]:
    """pyspark's bin/spark-sql on the project's catalog: the Delta package and the same
    warehouse / metastore conf as every job (store.spark_conf), database preselected."""
    from store.spark_conf import delta_package, spark_conf

    conf = spark_conf(cfg)
    conf["spark.sql.cli.print.header"] = "true"
    cmd = [str(Path(sys.executable).parent / "spark-sql"), "--master", cfg.spark.master,
           "--packages", delta_package(), "--driver-memory", cfg.spark.driver_memory]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    return [*cmd, "--database", cfg.storage.database]
