"""(Re)create the analyst views; optionally open a spark-sql shell on the catalog.

    python -m jobs.views            # (re)create the views of the configured catalog
    python -m jobs.views --shell    # then an interactive spark-sql shell on it (`make sql`)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

from core.settings import PROJECT_ROOT
from pipeline.entry import parse_job_args
from store.spark import get_spark
from store.tables import ensure_tables
from store.views import ensure_views, spark_sql_command


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force", action="store_true", help="replace every view")
        p.add_argument("--shell", action="store_true",
                       help="then open an interactive spark-sql shell on the catalog")

    args, cfg = parse_job_args(__doc__, argv, extra, ds=False)
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


if __name__ == "__main__":
    raise SystemExit(main())
