"""Job `build_enhanced_state`: bronze logs of one day -> list-level training rows.

For every request it builds the enhanced state of each exposed pair (ALGORITHM.md
section 1; layout in mtf/schema.py, the same vectors the simulator served from),
the logged actions and boxes, the per-critic-set rewards, and links the NEXT request
of the same session (its pairs, boxes and mask) for list-level TD, with `done` when
the session ended. It also builds the user-level `user_state` table.

The plan is shaped by the data sizes (docs/ETL.md has the measurements): exposures
are 5x the requests and a built pair state is 60 floats, so the job moves only raw,
compact per-pair fields through the shuffles and builds the wide arrays last.
Exposures and feedback are each grouped by request once, joined with the requests
(and their users) on `request_id` without a further shuffle, and one window per
session then gives the session-so-far stats and, with `lead()`, the next request's
list; pair states (own and next) are built after that window. `run` persists that
compact per-request frame, from which both tables are written.

Pure transforms `session_rows` / `enhanced_rows` / `user_state_rows` (and
`build_enhanced_state`, both tables at once) on DataFrames; I/O in `run`.

    spark-submit jobs/build_enhanced_state.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.common import parse_job_args
from jobs.spark import get_spark
from jobs.tables import ensure_tables, read_partition, write_partition
from mtf import schema as S
from mtf.config import DataConfig, PipelineConfig, RewardConfig

log = logging.getLogger("jobs.build_enhanced_state")

L = S.LIST_LEN
D = S.PAIR_STATE_DIM
A = S.ACTION_DIM
FLOATS = "array<float>"
# raw per-pair fields carried through the shuffles (the pair state is built from them last)
PAIR_FIELDS = ("position", "item_id", "item_vec", "duration_s", "popularity", "category",
               "preds", "cand_rank", "cand_z")
FEEDBACK_FIELDS = ("item_id", "watch_time_s", "valid", "like", "share", "collect")
# the user block's inputs: the user's profile and the request's context
USER_FIELDS = ("age_bucket", "gender", "region", "activity", "interest", "hour", "device",
               "network", "request_index")


def _floats(*cols: Column) -> Column:
    return F.array(*[c.cast("double") for c in cols]).cast(FLOATS)


def _one_hot(col: Column, n: int) -> Column:
    return _floats(*[(col == i).cast("double") for i in range(n)])


def user_block(u: Column, watch_before_s: Column, valid_before: Column) -> Column:
    """User block [D_USER] from a struct of USER_FIELDS and the session-so-far stats."""
    hour = u["hour"].cast("double")
    return F.concat(
        _floats(u["age_bucket"] / (S.NUM_AGE_BUCKETS - 1), u["gender"],
                u["region"] / (S.NUM_REGIONS - 1), u["activity"]),
        u["interest"].cast(FLOATS),
        _floats(F.sin(2 * math.pi * hour / 24.0), F.cos(2 * math.pi * hour / 24.0)),
        _one_hot(u["device"], S.NUM_DEVICES),
        _floats(u["network"],
                u["request_index"] / S.MAX_REQUESTS_PER_SESSION,
                F.log1p(watch_before_s) / 6.0,
                valid_before / 10.0),
    )


def item_block(p: Column) -> Column:
    """Item block [D_ITEM] from a pair struct (PAIR_FIELDS)."""
    return F.concat(
        p["item_vec"].cast(FLOATS),
        _floats(F.log1p(p["duration_s"]) / 5.0, p["popularity"]),
        _one_hot(p["category"], S.NUM_CATEGORIES),
    )


def pair_state(user: Column, p: Column) -> Column:
    """Enhanced state [PAIR_STATE_DIM] of one pair: user block, item block, predictions."""
    return F.concat(user, item_block(p), p["preds"].cast(FLOATS), p["cand_rank"].cast(FLOATS),
                    p["cand_z"].cast(FLOATS))


def pair_rewards(reward: RewardConfig, f: Column) -> tuple[Column, Column]:
    """(critic-set 0, critic-set 1) reward of one pair from its feedback struct (or null)."""
    watch = F.coalesce(f["watch_time_s"], F.lit(0.0)) * (reward.w_watch / 60.0)
    other = (reward.w_valid * F.coalesce(f["valid"], F.lit(0))
             + reward.w_like * F.coalesce(f["like"], F.lit(0))
             + reward.w_share * F.coalesce(f["share"], F.lit(0))
             + reward.w_collect * F.coalesce(f["collect"], F.lit(0)))
    return watch.cast("float"), other.cast("float")


def _pad(arr: Column, n: Column, width: int, fill: float = 0.0) -> Column:
    """Right-pad a flat array of n items x `width` values to L items."""
    return F.concat(arr, F.array_repeat(F.lit(fill).cast("float"), (F.lit(L) - n) * width))


def _zeros(n: int) -> Column:
    return F.array_repeat(F.lit(0.0).cast("float"), n)


def _split(eval_fraction: float) -> Column:
    bucket = F.pmod(F.xxhash64(F.col("session_id")), F.lit(1000))
    return F.when(bucket < int(round(eval_fraction * 1000)), "eval").otherwise("train")


def _sum(values: Column) -> Column:
    return F.aggregate(values.cast("array<double>"), F.lit(0.0), lambda acc, x: acc + x)


def session_rows(users: DataFrame, items: DataFrame, requests: DataFrame,
                 exposures: DataFrame, feedback: DataFrame, reward: RewardConfig) -> DataFrame:
    """One compact row per request with a list: raw pairs, rewards, user block, next request.

    Semantics of the list-level link: a request's next list is the request with
    `request_index + 1` of the same session, if that request has a known user and at least
    one exposure of a known item; the session-so-far stats count every logged request
    before it (ALGORITHM.md section 1).
    """
    fb = feedback.groupBy("request_id").agg(
        F.sum("watch_time_s").alias("req_watch_s"),
        F.sum("valid").alias("req_valid"),
        F.max("exit_after_request").alias("exit_after_request"),
        F.collect_list(F.struct(*FEEDBACK_FIELDS)).alias("feedback"))
    ex = (exposures.join(items.drop("ds"), "item_id", "inner")
          .groupBy("request_id").agg(F.sort_array(F.collect_list(F.struct(
              *PAIR_FIELDS, F.col("action").cast(FLOATS).alias("action"),
              F.col("mu_bp").cast(FLOATS).alias("box_center")))).alias("pairs")))
    req = (requests.join(users.drop("ds").withColumn("_user", F.lit(True)), "user_id", "left")
           .select("ds", "request_id", "session_id", "user_id", "request_index",
                   F.struct(*USER_FIELDS).alias("u"), F.col("_user").isNotNull().alias("has_user"),
                   F.col("cand_pred_mean").cast(FLOATS).alias("cand_pred_mean"),
                   F.col("cand_pred_std").cast(FLOATS).alias("cand_pred_std"),
                   F.col("action").cast(FLOATS).alias("u_action"),
                   F.col("mu_bp").cast(FLOATS).alias("u_box_center")))
    # all three sides are hash-partitioned by request_id: these joins add no shuffle
    base = req.join(fb, "request_id", "left").join(ex, "request_id", "left")

    def matched(p: Column) -> Column:
        return F.get(F.filter("feedback", lambda f: f["item_id"] == p["item_id"]), 0)

    rw = F.transform("pairs", lambda p: pair_rewards(reward, matched(p))[0])
    ro = F.transform("pairs", lambda p: pair_rewards(reward, matched(p))[1])
    valid = F.transform("pairs", lambda p: F.coalesce(matched(p)["valid"], F.lit(0))
                        .cast("float"))
    base = base.select(
        "ds", "request_id", "session_id", "user_id", "request_index", "u", "has_user",
        "cand_pred_mean", "cand_pred_std", "u_action", "u_box_center", "exit_after_request",
        "pairs", F.coalesce("req_watch_s", F.lit(0.0)).alias("req_watch_s"),
        F.coalesce("req_valid", F.lit(0)).alias("req_valid"),
        rw.alias("reward_watch"), ro.alias("reward_other"), valid.alias("valid"))

    w = Window.partitionBy("session_id").orderBy("request_index")
    before, upto = (w.rowsBetween(Window.unboundedPreceding, k) for k in (-1, 0))
    nxt = F.lead(F.struct("request_index", "u", "has_user", "pairs", "cand_pred_mean",
                          "cand_pred_std", "u_box_center")).over(w)
    rows = base.select(
        "*",
        F.coalesce(F.sum("req_watch_s").over(before), F.lit(0.0)).alias("watch_before_s"),
        F.coalesce(F.sum("req_valid").over(before), F.lit(0)).alias("valid_before"),
        # the next request's session-so-far stats: everything up to and including this one
        F.sum("req_watch_s").over(upto).alias("watch_upto_s"),
        F.sum("req_valid").over(upto).alias("valid_upto"),
        nxt.alias("nxt"))
    has_next = F.coalesce((F.col("nxt.request_index") == F.col("request_index") + 1)
                          & F.col("nxt.has_user") & F.col("nxt.pairs").isNotNull(), F.lit(False))
    done = (F.coalesce(F.col("exit_after_request"), F.lit(1)) == 1) | ~has_next
    return (rows.where(F.col("has_user") & F.col("pairs").isNotNull())
            .withColumn("done", done)
            .withColumn("user_block", user_block(F.col("u"), F.col("watch_before_s"),
                                                 F.col("valid_before")))
            .withColumn("next_user_block", user_block(F.col("nxt.u"), F.col("watch_upto_s"),
                                                      F.col("valid_upto")))
            .drop("u", "has_user", "req_watch_s", "req_valid", "watch_before_s",
                  "valid_before", "watch_upto_s", "valid_upto"))


def enhanced_rows(rows: DataFrame, data: DataConfig) -> DataFrame:
    """The `enhanced_state` table's rows from `session_rows`."""
    n = F.size("pairs")
    n_next = F.size("nxt.pairs")
    done = F.col("done")

    def unless_done(col: Column, width: int) -> Column:
        return F.when(done, _zeros(width)).otherwise(col)

    return rows.select(
        "ds", _split(data.eval_fraction).alias("split"), "request_id", "session_id", "user_id",
        "request_index", n.alias("n_items"),
        _pad(F.array_repeat(F.lit(1.0).cast("float"), n), n, 1).alias("mask"),
        F.concat(F.transform("pairs", lambda p: p["item_id"]),
                 F.array_repeat(F.lit(-1).cast("bigint"), F.lit(L) - n)).alias("item_ids"),
        _pad(F.flatten(F.transform("pairs", lambda p: pair_state(F.col("user_block"), p))),
             n, D).alias("pair_state"),
        _pad(F.flatten(F.transform("pairs", lambda p: p["action"])), n, A).alias("action"),
        _pad(F.flatten(F.transform("pairs", lambda p: p["box_center"])), n, A)
        .alias("box_center"),
        _pad(F.col("reward_watch"), n, 1).alias("reward_watch"),
        _pad(F.col("reward_other"), n, 1).alias("reward_other"),
        _pad(F.col("valid"), n, 1).alias("valid"),
        unless_done(_pad(F.flatten(F.transform(
            "nxt.pairs", lambda p: pair_state(F.col("next_user_block"), p))), n_next, D),
            L * D).alias("next_pair_state"),
        unless_done(_pad(F.flatten(F.transform("nxt.pairs", lambda p: p["box_center"])),
                         n_next, A), L * A).alias("next_box_center"),
        unless_done(_pad(F.array_repeat(F.lit(1.0).cast("float"), n_next), n_next, 1), L)
        .alias("next_mask"),
        done.cast("float").alias("done"))


def user_state_rows(rows: DataFrame, data: DataConfig) -> DataFrame:
    """The `user_state` table's rows (one per request, user-level MDP) from `session_rows`."""
    done = F.col("done")
    return rows.select(
        "ds", _split(data.eval_fraction).alias("split"), "request_id", "session_id", "user_id",
        "request_index",
        F.concat("user_block", "cand_pred_mean", "cand_pred_std").alias("user_state"),
        F.col("u_action").alias("action"), F.col("u_box_center").alias("box_center"),
        _sum(F.col("reward_watch")).cast("float").alias("reward_watch"),
        _sum(F.col("reward_other")).cast("float").alias("reward_other"),
        F.when(done, _zeros(S.USER_STATE_DIM)).otherwise(F.concat(
            "next_user_block", "nxt.cand_pred_mean", "nxt.cand_pred_std"))
        .alias("next_user_state"),
        F.when(done, _zeros(A)).otherwise(F.col("nxt.u_box_center")).alias("next_box_center"),
        done.cast("float").alias("done"))


def build_enhanced_state(users: DataFrame, items: DataFrame, requests: DataFrame,
                         exposures: DataFrame, feedback: DataFrame, reward: RewardConfig,
                         data: DataConfig) -> tuple[DataFrame, DataFrame]:
    """Return (enhanced_state, user_state) for one day's bronze tables."""
    rows = session_rows(users, items, requests, exposures, feedback, reward)
    return enhanced_rows(rows, data), user_state_rows(rows, data)


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> dict[str, int]:
    db = cfg.storage.database
    ensure_tables(spark, db)
    src = {t: read_partition(spark, db, t, ds) for t in
           ("raw_users", "raw_items", "raw_requests", "raw_exposures", "raw_feedback")}
    if src["raw_requests"].limit(1).count() == 0:
        raise RuntimeError(f"no raw_requests for ds={ds}: run simulate (or wait for logs) first")
    # both tables come from these rows: computed once, kept (spilling to disk) for both writes
    rows = session_rows(src["raw_users"], src["raw_items"], src["raw_requests"],
                        src["raw_exposures"], src["raw_feedback"], cfg.reward)
    rows = rows.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {"enhanced_state": write_partition(enhanced_rows(rows, cfg.data), db,
                                                    "enhanced_state", ds),
                  "user_state": write_partition(user_state_rows(rows, cfg.data), db,
                                                "user_state", ds)}
    finally:
        rows.unpersist()
    log.info("rows written: %s", counts)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_job_args(__doc__.splitlines()[0], argv)
    spark = get_spark(cfg, f"mtf-build-enhanced-state-{args.ds}")
    run(spark, cfg, args.ds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
