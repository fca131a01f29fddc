"""Job `rollback`: take a published policy out of service in one command.

    mtf rollback --reason "CTR alert 2026-01-04"                 # the newest published policy
    mtf rollback --version enhanced_rl-2026-01-03 --reason "..."  # a named one (idempotent)

1. the registry row of the policy becomes `rolled_back` with the reason (one MERGE), so
   `serving_policy` picks the previous published policy (or the fixed weights) for every
   day it would have served;
2. the `fusion_weights` partition that the policy wrote is rewritten with the policy that
   serves now, so that consumers of the weights table follow the registry;
3. MLflow follows (store/tracking.py): the policy's registered version is tagged
   `status=rolled_back` and the `champion` alias moves to the version of the policy that
   serves from now on (the newest published one), or is removed when the fixed default
   weights serve. A tracking failure is a warning (`tracking.strict` fails the command,
   after the Delta steps).

Rerunning with the same `--version` repeats the steps with the same result (a crash
between them is repaired by the rerun). Without `--version` it picks the newest published
policy, so only use that form once: the log line names what was rolled back.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from pyspark.sql import SparkSession

from core.ds import validate_ds
from pipeline.config import PipelineConfig
from pipeline.entry import parse_job_args
from store.registry import serving_policy
from store.spark import get_spark
from store.tables import (
    ensure_tables,
    qualified,
    read_partition,
    retry_on_conflict,
    sql_string,
    write_partition,
)

log = logging.getLogger("jobs.rollback")


def next_day(ds: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(validate_ds(ds)) + dt.timedelta(days=1)).isoformat()


def run(spark: SparkSession, cfg: PipelineConfig, reason: str,
        version: str | None = None) -> dict[str, str]:
    from pyspark.sql import functions as F

    from jobs.publish import build_fusion_weights, mirror_registry

    db = cfg.storage.database
    ensure_tables(spark, db)
    reg = spark.table(qualified(db, "policy_registry"))
    if version is None:
        rows = (reg.where("status = 'published'").orderBy(F.desc("ds"), F.desc("model_version"))
                .limit(1).collect())
        if not rows:
            raise RuntimeError("nothing to roll back: no published policy")
    else:
        rows = reg.where(F.col("model_version") == F.lit(version)).collect()
        if not rows:
            raise RuntimeError(f"unknown policy version {version!r}")
    row = rows[0]
    if row["status"] not in ("published", "rolled_back"):
        raise RuntimeError(f"{row['model_version']} is {row['status']}, not published")
    ds = row["ds"]
    update = (f"UPDATE {qualified(db, 'policy_registry')} SET status = 'rolled_back', "
              f"reason = {sql_string(reason)}, updated_at_ds = {sql_string(ds)} "
              f"WHERE model_version = {sql_string(row['model_version'])}")
    # the same values again after a lost commit race: an idempotent update
    retry_on_conflict(lambda: spark.sql(update), f"rollback {row['model_version']}")
    now_serving = serving_policy(spark, db, next_day(ds))
    n = write_partition(build_fusion_weights(read_partition(spark, db, "enhanced_state", ds),
                                             now_serving, ds), db, "fusion_weights", ds)
    log.info("ROLLED BACK %s (%s); %s serves from %s on; fusion_weights ds=%s rewritten "
             "(%d rows)", row["model_version"], reason, now_serving.model_version,
             next_day(ds), ds, n)
    mirror_registry(spark, cfg, {row["model_version"]: "rolled_back"}, "rollback")
    return {"rolled_back": row["model_version"], "now_serving": now_serving.model_version}


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p: argparse.ArgumentParser) -> None:
        p.add_argument("--version", default=None, help="policy to roll back (default: newest "
                                                       "published)")
        p.add_argument("--reason", required=True, help="why (kept in policy_registry.reason)")

    args, cfg = parse_job_args(__doc__, argv, extra, ds=False)
    out = run(get_spark(cfg, "mtf-rollback"), cfg, args.reason, args.version)
    print(f"rolled back {out['rolled_back']}; now serving {out['now_serving']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
