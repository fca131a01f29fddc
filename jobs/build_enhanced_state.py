"""Job `build_enhanced_state`: bronze logs of one day -> list-level training rows.

For every request it builds the enhanced state of each exposed pair (docs/ALGORITHM.md
section 1; layout in core/schema.py, the same vectors the simulator served from),
the logged actions and boxes, the per-critic-set rewards, and links the NEXT request
of the same session (its pairs, boxes and mask) for list-level TD, with `done` when
the session ended. It also builds the user-level `user_state` table.

Candidates (bronze `raw_candidates`, the top K = `data.candidates` of each request by
logged fused score): their pair states, built exactly like the exposed ones, and box
centres go to `cand_state` [K*D], `cand_center` [K*A] and `cand_mask` [K], slot k holding
the candidate of cand_index k (so slots 0..l-1 are the exposed positions; an absent
candidate, e.g. quarantined, is a zero slot with mask 0). With `data.next_candidates` the
next request's three arrays are linked like its pairs (`next_cand_*`, zeros when done);
without, those columns are NULL.

The next list comes from `lead()` over the session's rows, one shuffle by session; the
former self join of the rows with themselves on (session_id, request_index + 1) had
Spark build the whole list pipeline twice and shuffle both sides (13 exchanges instead
of 8, twice the peak memory at 1M requests; docs/ETL.md has the measurements). Pair
states are built per exposure, before the grouping, where Spark generates code for them:
building them later inside higher-order functions (`transform`, interpreted) was
measured up to 3x slower.

Pure transform `build_enhanced_state(...)` on DataFrames; I/O in `run`.

    spark-submit jobs/build_enhanced_state.py --ds 2026-01-01
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from core import schema as S
from core.reward import RewardConfig, critic_rewards
from pipeline.config import DataConfig, PipelineConfig
from pipeline.entry import spark_job_main
from store.tables import BRONZE, ensure_tables, read_partition, write_partition

log = logging.getLogger("jobs.build_enhanced_state")

L = S.LIST_LEN
D = S.PAIR_STATE_DIM
A = S.ACTION_DIM
FLOATS = "array<float>"


def _floats(*cols: Column) -> Column:
    return F.array(*[c.cast("double") for c in cols]).cast(FLOATS)


def _one_hot(col: Column, n: int) -> Column:
    return _floats(*[(col == i).cast("double") for i in range(n)])


def user_block(r: DataFrame) -> Column:
    """User block [D_USER] from a requests x users row with session-so-far stats."""
    hour = F.col("hour").cast("double")
    return F.concat(
        _floats(F.col("age_bucket") / (S.NUM_AGE_BUCKETS - 1), F.col("gender"),
                F.col("region") / (S.NUM_REGIONS - 1), F.col("activity")),
        F.col("interest").cast(FLOATS),
        _floats(F.sin(2 * math.pi * hour / 24.0), F.cos(2 * math.pi * hour / 24.0)),
        _one_hot(F.col("device"), S.NUM_DEVICES),
        _floats(F.col("network"),
                F.col("request_index") / S.MAX_REQUESTS_PER_SESSION,
                F.log1p(F.col("session_watch_before_s")) / S.SESSION_WATCH_LOG_SCALE,
                F.col("session_valid_before") / S.SESSION_VALID_SCALE),
    )


def item_block() -> Column:
    """Item block [D_ITEM] from an items row."""
    return F.concat(
        F.col("item_vec").cast(FLOATS),
        _floats(F.log1p(F.col("duration_s")) / S.DURATION_LOG_SCALE, F.col("popularity")),
        _one_hot(F.col("category"), S.NUM_CATEGORIES),
    )


def pair_state() -> Column:
    """Enhanced pair state [D] of a (request context x items x logged pair) row: user
    block, item block, the MTL predictions, their ranks and z-scores among the candidates.
    The same for an exposure and a logged candidate."""
    return F.concat(F.col("user_block"), item_block(), F.col("preds").cast(FLOATS),
                    F.col("cand_rank").cast(FLOATS), F.col("cand_z").cast(FLOATS))


def pair_rewards(reward: RewardConfig) -> tuple[Column, Column]:
    """(critic-set 0, critic-set 1) reward of one pair from its feedback row."""
    zero = lambda c: F.coalesce(F.col(c), F.lit(0))  # noqa: E731
    watch, other = critic_rewards(
        reward, F.coalesce(F.col("watch_time_s"), F.lit(0.0)), zero("valid"), zero("like"),
        zero("share"), zero("collect"))
    return watch.cast("float"), other.cast("float")


def _zeros(n: int | Column) -> Column:
    return F.array_repeat(F.lit(0.0).cast("float"), n)


def _pad(arr: Column, n: Column, width: int, fill: float = 0.0) -> Column:
    """Right-pad a flat array of n items x `width` values to L items."""
    return F.concat(arr, F.array_repeat(F.lit(fill).cast("float"), (F.lit(L) - n) * width))


def _split(eval_fraction: float) -> Column:
    bucket = F.pmod(F.xxhash64(F.col("session_id")), F.lit(1000))
    return F.when(bucket < int(round(eval_fraction * 1000)), "eval").otherwise("train")


def request_context(requests: DataFrame, users: DataFrame, feedback: DataFrame) -> DataFrame:
    """Requests with the user's profile, session-so-far stats, exit flag and user block."""
    per_request = feedback.groupBy("request_id").agg(
        F.sum("watch_time_s").alias("req_watch_s"),
        F.sum("valid").alias("req_valid"),
        F.max("exit_after_request").alias("exit_after_request"))
    before = (Window.partitionBy("session_id").orderBy("request_index")
              .rowsBetween(Window.unboundedPreceding, -1))
    r = (requests.join(per_request, "request_id", "left")
         .withColumn("session_watch_before_s",
                     F.coalesce(F.sum(F.coalesce("req_watch_s", F.lit(0.0))).over(before),
                                F.lit(0.0)))
         .withColumn("session_valid_before",
                     F.coalesce(F.sum(F.coalesce("req_valid", F.lit(0))).over(before), F.lit(0)))
         .join(users.drop("ds"), "user_id", "inner"))
    return r.withColumn("user_block", user_block(r))


def candidate_lists(candidates: DataFrame, items: DataFrame, blocks: DataFrame, k: int
                    ) -> DataFrame:
    """request_id, cand_state [k*D], cand_center [k*A], cand_mask [k] of the requests with
    candidate rows; `blocks` is (request_id, user_block).

    Slot s holds the row of cand_index s (`array_position` in the request's sorted
    cand_index list, so a gap stays a zero slot and a duplicated index keeps its first
    row); rows outside [0, k) are left out. Pair states are built per candidate row,
    before the grouping (generated code; see the module docstring)."""
    rows = (candidates.where((F.col("cand_index") >= 0) & (F.col("cand_index") < k))
            .join(items.drop("ds"), "item_id", "inner")
            .join(blocks, "request_id", "inner")
            .select("request_id", F.struct(
                F.col("cand_index").alias("cand_index"),
                pair_state().alias("state"),
                F.col("mu_bp").cast(FLOATS).alias("center")).alias("cand")))
    grouped = (rows.groupBy("request_id")
               .agg(F.sort_array(F.collect_list("cand")).alias("cands"))
               .select("request_id", "cands", *[
                   F.array_position(F.col("cands.cand_index"), s).alias(f"_at{s}")
                   for s in range(k)]))

    def slot(s: int, field: str, width: int) -> Column:
        # get() is NULL at index -1 (array_position's 0 = absent)
        return F.coalesce(F.get(F.col("cands"), F.col(f"_at{s}") - 1)[field], _zeros(width))

    return grouped.select(
        "request_id",
        F.concat(*[slot(s, "state", D) for s in range(k)]).alias("cand_state"),
        F.concat(*[slot(s, "center", A) for s in range(k)]).alias("cand_center"),
        F.array(*[(F.col(f"_at{s}") > 0).cast("float") for s in range(k)]).alias("cand_mask"))


def build_enhanced_state(users: DataFrame, items: DataFrame, requests: DataFrame,
                         exposures: DataFrame, feedback: DataFrame, candidates: DataFrame,
                         reward: RewardConfig, data: DataConfig
                         ) -> tuple[DataFrame, DataFrame]:
    """Return (enhanced_state, user_state) for one day's bronze tables (their order in
    `store.tables.BRONZE`)."""
    k = data.candidates
    ctx = request_context(
        requests.select("*", F.col("action").cast(FLOATS).alias("u_action"),
                        F.col("mu_bp").cast(FLOATS).alias("u_box_center"))
        .drop("action", "mu_bp"), users, feedback)
    rw, ro = pair_rewards(reward)
    pairs = (exposures
             .join(items.drop("ds"), "item_id", "inner")
             .join(feedback.drop("ds"), ["request_id", "item_id"], "left")
             .join(ctx.select("request_id", "user_block"), "request_id", "inner")
             .select(
                 "request_id",
                 F.struct(
                     F.col("position").alias("position"),
                     F.col("item_id").alias("item_id"),
                     pair_state().alias("pair_state"),
                     F.col("action").cast(FLOATS).alias("action"),
                     F.col("mu_bp").cast(FLOATS).alias("box_center"),
                     rw.alias("reward_watch"), ro.alias("reward_other"),
                     F.coalesce(F.col("valid"), F.lit(0)).cast("float").alias("valid"),
                 ).alias("pair")))
    lists = (pairs.groupBy("request_id")
             .agg(F.sort_array(F.collect_list("pair")).alias("pairs"))
             .withColumn("n_items", F.size("pairs")))

    def flat(field: str) -> Column:
        return F.flatten(F.transform("pairs", lambda p: p[field]))

    def per_item(field: str, fill: float = 0.0) -> Column:
        return _pad(F.transform("pairs", lambda p: p[field].cast("float")), F.col("n_items"), 1,
                    fill)

    lists = lists.select(
        "request_id", "n_items",
        _pad(F.array_repeat(F.lit(1.0).cast("float"), F.col("n_items")), F.col("n_items"), 1)
        .alias("mask"),
        F.concat(F.transform("pairs", lambda p: p["item_id"]),
                 F.array_repeat(F.lit(-1).cast("bigint"), F.lit(L) - F.col("n_items")))
        .alias("item_ids"),
        _pad(flat("pair_state"), F.col("n_items"), D).alias("pair_state"),
        _pad(flat("action"), F.col("n_items"), A).alias("action"),
        _pad(flat("box_center"), F.col("n_items"), A).alias("box_center"),
        per_item("reward_watch").alias("reward_watch"),
        per_item("reward_other").alias("reward_other"),
        per_item("valid").alias("valid"),
        F.aggregate(F.transform("pairs", lambda p: p["reward_watch"].cast("double")),
                    F.lit(0.0), lambda acc, x: acc + x).alias("list_reward_watch"),
        F.aggregate(F.transform("pairs", lambda p: p["reward_other"].cast("double")),
                    F.lit(0.0), lambda acc, x: acc + x).alias("list_reward_other"),
    )
    cands = candidate_lists(candidates, items, ctx.select("request_id", "user_block"), k)
    lists = lists.join(cands, "request_id", "left").select(
        *lists.columns,
        F.coalesce("cand_state", _zeros(k * D)).alias("cand_state"),
        F.coalesce("cand_center", _zeros(k * A)).alias("cand_center"),
        F.coalesce("cand_mask", _zeros(k)).alias("cand_mask"))
    ctx = ctx.withColumn("user_state", F.concat(
        F.col("user_block"), F.col("cand_pred_mean").cast(FLOATS),
        F.col("cand_pred_std").cast(FLOATS)))
    rows = lists.join(ctx.select("request_id", "session_id", "user_id", "request_index",
                                 "exit_after_request", "user_state", "ds",
                                 F.col("u_action"), F.col("u_box_center")),
                      "request_id", "inner")
    # the next list: the next row of the session if it is request_index + 1 (one shuffle
    # by session; a self join would shuffle both sides and, without reuse, build it twice)
    w = Window.partitionBy("session_id").orderBy("request_index")
    next_cands = ([F.col(c).alias("next_" + c) for c in ("cand_state", "cand_center",
                                                          "cand_mask")]
                  if data.next_candidates else [])
    nxt = F.lead(F.struct(
        F.col("request_index").alias("next_request_index"),
        F.col("pair_state").alias("next_pair_state"),
        F.col("box_center").alias("next_box_center"), F.col("mask").alias("next_mask"),
        F.col("user_state").alias("next_user_state"),
        F.col("u_box_center").alias("next_u_box_center"), *next_cands)).over(w)
    joined = rows.withColumn("nxt", nxt)
    has_next = F.coalesce(F.col("nxt.next_request_index") == F.col("request_index") + 1,
                          F.lit(False))
    done = (F.coalesce(F.col("exit_after_request"), F.lit(1)) == 1) | ~has_next
    joined = joined.withColumn("done", done).select("*", "nxt.*").drop("nxt")

    def unless_done(col: str, width: int) -> Column:
        return F.when(F.col("done"), _zeros(width)).otherwise(F.col(col))

    def next_cand(col: str, width: int) -> Column:
        if data.next_candidates:
            return unless_done(col, width).alias(col)
        return F.lit(None).cast(FLOATS).alias(col)

    joined = joined.withColumn("split", _split(data.eval_fraction))
    enhanced = joined.select(
        "ds", "split", "request_id", "session_id", "user_id", "request_index", "n_items", "mask",
        "item_ids", "pair_state", "action", "box_center", "reward_watch", "reward_other", "valid",
        unless_done("next_pair_state", L * D).alias("next_pair_state"),
        unless_done("next_box_center", L * A).alias("next_box_center"),
        unless_done("next_mask", L).alias("next_mask"),
        F.col("done").cast("float").alias("done"),
        "cand_state", "cand_center", "cand_mask",
        next_cand("next_cand_state", k * D), next_cand("next_cand_center", k * A),
        next_cand("next_cand_mask", k))
    user_state = joined.select(
        "ds", "split", "request_id", "session_id", "user_id", "request_index", "user_state",
        F.col("u_action").alias("action"), F.col("u_box_center").alias("box_center"),
        F.col("list_reward_watch").cast("float").alias("reward_watch"),
        F.col("list_reward_other").cast("float").alias("reward_other"),
        unless_done("next_user_state", S.USER_STATE_DIM).alias("next_user_state"),
        unless_done("next_u_box_center", A).alias("next_box_center"),
        F.col("done").cast("float").alias("done"))
    return enhanced, user_state


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> dict[str, int]:
    db = cfg.storage.database
    ensure_tables(spark, db)
    src = {t: read_partition(spark, db, t, ds) for t in
           BRONZE}
    if src["raw_requests"].limit(1).count() == 0:
        raise RuntimeError(f"no raw_requests for ds={ds}: run simulate (or wait for logs) first")
    enhanced, user_state = build_enhanced_state(*(src[t] for t in BRONZE), cfg.reward,
                                                cfg.data)
    counts = {"enhanced_state": write_partition(enhanced, db, "enhanced_state", ds),
              "user_state": write_partition(user_state, db, "user_state", ds)}
    log.info("rows written: %s", counts)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("build-enhanced-state", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
