"""(Re)create the analyst views; optionally open an interactive SQL shell on the catalog.

    python -m jobs.views            # (re)create the views of the configured catalog
    python -m jobs.views --shell    # then an interactive SQL shell on it (`make sql`)

With the warehouse's Spark service running (`mtf spark start`) the shell is a Spark Connect
client (statements end with `;`, results as tables, `quit;` or Ctrl-D leaves); without it,
pyspark's `bin/spark-sql` in its own JVM.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence

from core.settings import PROJECT_ROOT
from pipeline.entry import parse_job_args
from store.service import connect_url
from store.spark import get_spark
from store.tables import ensure_tables
from store.views import QueryError, ensure_views, run_query, spark_sql_command


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force", action="store_true", help="replace every view")
        p.add_argument("--shell", action="store_true",
                       help="then open an interactive spark-sql shell on the catalog")

    args, cfg = parse_job_args(__doc__, argv, extra, ds=False)
    if args.shell and connect_url(cfg):
        spark = get_spark(cfg, "mtf-sql-shell")
        ensure_tables(spark, cfg.storage.database)
        ensure_views(spark, cfg.storage.database, force=args.force)
        return sql_shell(spark, cfg.storage.database)
    if args.shell:
        # the embedded Derby metastore admits one JVM: create the views in a child
        # process, then replace this process with the shell's JVM
        prep = [sys.executable, "-m", "jobs.views", *(["--force"] if args.force else [])]
        prep += ["--profile", args.profile] if args.profile else []
        for item in args.overrides:
            prep += ["--set", item]
        subprocess.run(prep, check=True, cwd=PROJECT_ROOT)
        cmd = spark_sql_command(cfg)
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
        print(f"spark-sql on {cfg.storage.warehouse_path()} (database {cfg.storage.database}); "
              f"try: SELECT * FROM v_policy_comparison;", flush=True)
        os.execve(cmd[0], cmd, env)
    spark = get_spark(cfg, "mtf-views")
    ensure_tables(spark, cfg.storage.database)
    ensure_views(spark, cfg.storage.database, force=args.force)
    return 0


def statements(lines: Iterable[str]) -> Iterator[str]:
    """SQL statements from input lines: each ends with `;` at the end of a line."""
    buf: list[str] = []
    for line in lines:
        buf.append(line)
        if line.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            buf = []
            if stmt:
                yield stmt


def _input_lines(prompt: str) -> Iterator[str]:
    while True:
        try:
            yield input(prompt)
        except EOFError:
            print()
            return


def sql_shell(spark, db: str, lines: Iterable[str] | None = None, limit: int = 1000) -> int:
    """A SQL shell on a Spark Connect session; an error prints Spark's message and the
    shell goes on."""
    from tabulate import tabulate

    if lines is None:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        print(f"SQL on the Spark service (database {db}); end statements with ';', quit; "
              f"leaves. Try: SELECT * FROM {db}.v_policy_comparison;", flush=True)
        lines = _input_lines("mtf-sql> ")
    spark.sql(f"USE {db}")
    for stmt in statements(lines):
        if stmt.lower() in ("quit", "exit"):
            break
        try:
            columns, rows = run_query(spark, stmt, limit)
        except QueryError as e:
            print(f"error: {e}", flush=True)
            continue
        print(tabulate([list(r) for r in rows], headers=columns), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
