"""Job `simulate`: play production for one day and land its raw logs.

The day is served by the latest published policy (trained on an earlier day), or by the
fixed default weights when none is published, with box exploration around it. With an
online A/B (`ab` section, core/ab.py) the users are split by a stable hash into arms: the
`holdout` is served by the fixed default weights, the `canary` by the newest candidate the
gate did not publish (`store.registry.canary_policy`; the current policy while there is
none), `current` by the published policy; each request logs its arm. Like an
upstream log collector, it writes each bronze table's day into the landing zone
(store/landing.py: Parquet, then a _MANIFEST.json of its files written last);
`validate_logs` checks them and loads bronze. A rerun replaces the landed folders with the
same rows. Every bronze table lands every day, raw_candidates included: with
`sim.logged_candidates` = 0 its folder holds no row (and still its manifest).

    spark-submit jobs/simulate.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession

from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from store.landing import write_landing
from store.registry import FIXED_POLICY, canary_policy, load_policy, serving_policy
from store.tables import BRONZE, ensure_tables, qualified

log = logging.getLogger("jobs.simulate")


def to_spark(spark: SparkSession, pdf: pd.DataFrame | None, db: str, table: str
             ) -> DataFrame:
    """pandas -> Spark with the target table's exact schema (Arrow path; pandas nullable
    integers such as raw_candidates.position, Int32 with NA, arrive as INT with NULLs).
    None, a table the simulator did not log (raw_candidates when sim.logged_candidates is
    0), gives an empty frame of that schema."""
    schema = spark.table(qualified(db, table)).schema
    if pdf is None:
        return spark.createDataFrame([], schema=schema)
    missing = [f.name for f in schema.fields if f.name not in pdf.columns]
    if missing:
        raise ValueError(f"simulator output for {table} lacks columns {missing}")
    return spark.createDataFrame(pdf[[f.name for f in schema.fields]], schema=schema)


def serving_arms(spark: SparkSession, cfg: PipelineConfig, ds: str, world):
    """The day's `sim.Arms`: each configured arm's policy, and every user's arm."""
    from core.ab import assign_arms
    from sim import Arms

    db = cfg.storage.database
    shares = cfg.ab.shares()
    current = serving_policy(spark, db, ds)
    refs = {"current": current, "holdout": FIXED_POLICY}
    if any(a == "canary" for a, _ in shares):
        refs["canary"] = canary_policy(spark, db, ds, current) or current
    for arm, share in shares:
        log.info("arm %s (%.0f%% of users) served by %s (%s) on %s", arm, 100 * share,
                 refs[arm].model_version, refs[arm].level, ds)
    loaded = {}
    for ref in refs.values():
        if ref.model_version not in loaded:
            loaded[ref.model_version] = load_policy(ref)
    return Arms.split(world, [(a, loaded[refs[a].model_version]) for a, _ in shares],
                      assign_arms(world.user_id, shares, cfg.ab.salt))


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> dict[str, int]:
    from sim import World, simulate_day

    db = cfg.storage.database
    ensure_tables(spark, db)
    world = World.build(cfg.sim)
    arms = serving_arms(spark, cfg, ds, world)
    t0 = time.perf_counter()
    logs = simulate_day(world, arms, ds, explore=True)
    log.info("simulated %s in %.1fs", ds, time.perf_counter() - t0)
    counts = {}
    for table in BRONZE:
        pdf = getattr(logs, table)
        rows = 0 if pdf is None else len(pdf)
        path = write_landing(to_spark(spark, pdf, db, table), cfg, table, ds,
                             expected_rows=rows)
        counts[table] = rows
        log.info("landed %d rows of %s at %s", rows, table, path)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("simulate", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
