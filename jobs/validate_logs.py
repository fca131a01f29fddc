"""Job `validate_logs`: the day's landed raw logs -> bronze tables, quarantine, dq_metrics.

Write, audit, publish. Nothing reaches bronze (and so training) without passing the rules
declared in `RULES`, and nothing is lost: a row that breaks a rule goes whole (as JSON) to
`<table>_quarantine` with every rule it broke and the run id.

Hard rules fail the run with a message naming the table, the rule and example keys; bronze
is then left as it was:

* `missing_partition`: a table has no complete landed folder for the day (no manifest,
  store/landing.py);
* `landing_mismatch`: a landed folder does not hold what its manifest says (a file missing,
  empty, truncated, changed or not listed, not Parquet, schemas differing between files,
  duplicate column names), or Spark read another number of rows than the manifest's;
* `schema_drift`: a landed table lacks a column, has an extra one, or a column's type changed;
* `too_many_quarantined`: more than `quality.max_quarantine_fraction` of a table's rows are
  quarantined (an upstream breakage, not a few bad rows; quarantine and dq_metrics are
  written first so that the on-call engineer can see why);
* `no_requests`: no request of the day is left.

Soft rules (`RULES`) quarantine rows. Then the cascade: the list-level TD error links
consecutive requests of a session, so a session with any quarantined request, exposure,
feedback or candidate row is quarantined whole (its other rows with rule
`session_quarantined`): the learner reads the candidates of every request of a session
(the selection of each list and its TD target), so a session with a bad candidate row is
no more usable than one with a bad exposure. Exact duplicate rows (`duplicate_row`, the
first copy is kept) do not poison their session.

raw_candidates is checked against the other tables: each candidate belongs to a known
request (`orphan_candidate`) and item, its action lies inside the request's exploration
box (`outside_box`), and per request the exposed candidates are exactly the landed
exposures, at their positions, and the top l by logged score (`exposure_mismatch`). A day
without any candidate row (the simulator's `sim.logged_candidates` = 0) is valid; on a
day with candidate rows, a request without any is quarantined (`no_candidates`, like
`no_exposures`).

Counts reconcile: for every table, landed = accepted (bronze) + quarantined, recorded in
`dq_metrics` (rule `_all`) beside one row per rule. The counts are taken from the annotated
rows before anything is written and each write is checked against the rows its partition
holds afterwards (never against a table's latest commit, which may be another day's). The
order: an empty day fails (`no_requests`) before any write; then quarantine and dq_metrics;
then the hard rules (`too_many_quarantined`, `no_requests` when no request is left), so a
refused day leaves bronze as it was; then the six bronze partitions. Every write replaces
the day's partition in one Delta commit, and nothing here reads a clock: a rerun with the
same run id writes the same tables (a run killed between two bronze writes is completed by
its rerun).

    spark-submit jobs/validate_logs.py --ds 2026-01-01 [--run-id RUN]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from core import schema as S
from core.errors import UserError
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from store.landing import LandingError, missing_landings, read_landing, verify_landing
from store.tables import BRONZE, ensure_tables, qualified, write_partition

log = logging.getLogger("jobs.validate_logs")

SESSION_RULE = "session_quarantined"
NOT_CASCADED = ("duplicate_row",)

KEYS: dict[str, tuple[str, ...]] = {
    "raw_users": ("user_id",),
    "raw_items": ("item_id",),
    "raw_requests": ("request_id",),
    "raw_exposures": ("request_id", "position"),
    "raw_feedback": ("request_id", "item_id"),
    "raw_candidates": ("request_id", "cand_index"),
}
# Columns where NULL is a value, not a broken row (the DDL leaves them nullable): a
# candidate that was not exposed has no position.
NULLABLE: dict[str, tuple[str, ...]] = {"raw_candidates": ("position",)}
SESSION_TABLES = ("raw_requests", "raw_exposures", "raw_feedback", "raw_candidates")
BOX_TOLERANCE = 1e-6
"""Slack of `outside_box`: actions and box centres are stored as float32, rounded apart."""


@dataclass(frozen=True)
class Rule:
    """A soft rule: `sql` is TRUE when a row BREAKS it (NULL counts as broken)."""

    table: str
    name: str
    sql: str
    doc: str


def _vec_bad(col: str, n: int, lo: float | None = None, hi: float | None = None,
             absolute: bool = False) -> str:
    """SQL: array `col` has the wrong length, or an element null / NaN / outside range."""
    x = "abs(x)" if absolute else "x"
    out = [f"size({col}) != {n}"]
    if lo is not None or hi is not None:
        elem = ["x IS NULL", "isnan(x)"]
        if lo is not None:
            elem.append(f"{x} < {lo}")
        if hi is not None:
            elem.append(f"{x} > {hi}")
        out.append(f"exists({col}, x -> {' OR '.join(elem)})")
    return " OR ".join(out)


def _not_finite(*cols: str) -> str:
    """SQL: some element of an array column is null, NaN or infinite."""
    return " OR ".join(f"exists({c}, x -> x IS NULL OR isnan(x) OR abs(x) = double('inf'))"
                       for c in cols)


def _flags(cols: Sequence[str]) -> str:
    return " OR ".join(f"`{c}` NOT IN (0, 1)" for c in cols)


A, K, L = S.ACTION_DIM, S.NUM_HEADS, S.LIST_LEN
FLAGS = ("valid", "finish", "like", "share", "collect", "skip", "exit_after_request")

# Declared soft rules, in priority order per table (the first broken one names the row's
# quarantine `rule`). {ds}, {day0_ms}, {day1_ms}, {max_watch}, {valid_s}, {candidates}
# are filled in per run by `row_rules`; `null_key`, `null_value` (columns of NULLABLE
# excepted), `wrong_partition` and the rules that need windows or other tables
# (`CROSS_RULES`) are added by the job itself.
def _pair_rules(table: str) -> tuple[Rule, ...]:
    """The row rules of a table of (request, item) pairs with their predictions, candidate
    stats, action and box centre (raw_exposures, raw_candidates)."""
    return (
        Rule(table, "negative_id", "item_id < 0", "negative item id"),
        Rule(table, "vector_length",
             f"size(preds) != {K} OR size(cand_rank) != {K} OR size(cand_z) != {K} "
             f"OR size(action) != {A} OR size(mu_bp) != {A}",
             "prediction, candidate-stat, action or box vector of the wrong length"),
        Rule(table, "pred_range", _vec_bad("preds", K, lo=0, hi=1),
             "MTL prediction outside [0, 1], NaN or inf"),
        Rule(table, "action_range",
             _vec_bad("action", A, hi=1, absolute=True) + " OR "
             + _vec_bad("mu_bp", A, hi=1, absolute=True),
             "pair action or box centre outside [-1, 1], NaN or inf"),
        Rule(table, "vector_not_finite", _not_finite("cand_rank", "cand_z"),
             "candidate rank or z-score with a null, NaN or infinite element"),
    )


RULES: tuple[Rule, ...] = (
    Rule("raw_users", "negative_id", "user_id < 0", "negative user id (ids are >= 0)"),
    Rule("raw_users", "interest_length", f"size(interest) != {S.INTEREST_DIM}",
         "interest vector of the wrong length"),
    Rule("raw_users", "activity_range", "isnan(activity) OR activity < 0 OR activity > 1",
         "activity outside [0, 1] or NaN"),
    Rule("raw_users", "vector_not_finite", _not_finite("interest"),
         "interest vector with a null, NaN or infinite element"),
    Rule("raw_users", "category_range",
         f"age_bucket NOT BETWEEN 0 AND {S.NUM_AGE_BUCKETS - 1} OR gender NOT IN (0, 1) "
         f"OR region NOT BETWEEN 0 AND {S.NUM_REGIONS - 1}",
         "age bucket, gender or region code out of range"),
    Rule("raw_items", "negative_id", "item_id < 0 OR author_id < 0",
         "negative item or author id (ids are >= 0; publish's fallback weights row is -1)"),
    Rule("raw_items", "item_vec_length", f"size(item_vec) != {S.ITEM_VEC_DIM}",
         "item vector of the wrong length"),
    Rule("raw_items", "duration_range", "isnan(duration_s) OR NOT duration_s > 0 "
         "OR duration_s = double('inf')", "duration not a positive finite number"),
    Rule("raw_items", "popularity_range", "isnan(popularity) OR popularity < 0 "
         "OR popularity > 1", "popularity outside [0, 1] or NaN"),
    Rule("raw_items", "vector_not_finite", _not_finite("item_vec"),
         "item vector with a null, NaN or infinite element"),
    Rule("raw_items", "category_range", f"category NOT BETWEEN 0 AND {S.NUM_CATEGORIES - 1}",
         "category code out of range"),
    Rule("raw_requests", "negative_id", "user_id < 0", "negative user id"),
    Rule("raw_requests", "action_length",
         f"size(action) != {A} OR size(mu_bp) != {A} OR size(noise) != {A}",
         "action, box centre or noise vector of the wrong length"),
    Rule("raw_requests", "action_range",
         _vec_bad("action", A, hi=1, absolute=True) + " OR "
         + _vec_bad("mu_bp", A, hi=1, absolute=True),
         "logged action or box centre outside [-1, 1], NaN or inf"),
    Rule("raw_requests", "cand_stats_length",
         f"size(cand_pred_mean) != {K} OR size(cand_pred_std) != {K}",
         "candidate prediction stats of the wrong length"),
    Rule("raw_requests", "vector_not_finite", _not_finite("noise", "cand_pred_mean",
                                                          "cand_pred_std"),
         "exploration noise or candidate stats with a null, NaN or infinite element"),
    Rule("raw_requests", "box_width",
         "isnan(explore_half_width) OR explore_half_width < 0 OR explore_half_width > 1",
         "exploration box half-width outside [0, 1] (0: logged without exploration) or NaN"),
    Rule("raw_requests", "context_range",
         f"hour NOT BETWEEN 0 AND 23 OR device NOT BETWEEN 0 AND {S.NUM_DEVICES - 1} "
         "OR network NOT IN (0, 1) OR request_index < 0 "
         f"OR request_index >= {S.MAX_REQUESTS_PER_SESSION} OR n_candidates < {L}",
         "hour, device, network, request index or candidate count out of range"),
    Rule("raw_requests", "crosses_midnight", "ts_ms < {day0_ms} OR ts_ms >= {day1_ms}",
         "request time outside the day: its session crosses midnight"),
    Rule("raw_requests", "unknown_arm", "arm NOT IN ({arms})",
         "an A/B arm the profile does not serve (ab section: arms with a share > 0)"),
    *_pair_rules("raw_exposures"),
    Rule("raw_exposures", "list_too_long", f"position < 0 OR position >= {L}",
         f"position outside the exposed list of length {L}"),
    Rule("raw_feedback", "negative_id", "item_id < 0", "negative item id"),
    Rule("raw_feedback", "watch_time_negative", "watch_time_s < 0",
         "negative watch time"),
    Rule("raw_feedback", "watch_time_absurd",
         "isnan(watch_time_s) OR watch_time_s > {max_watch}",
         "watch time NaN, infinite or above quality.max_watch_time_s"),
    Rule("raw_feedback", "valid_inconsistent",
         "valid != CASE WHEN watch_time_s > {valid_s} THEN 1 ELSE 0 END",
         "valid disagrees with watch_time_s > quality.valid_watch_s"),
    Rule("raw_feedback", "flag_values", _flags(FLAGS), "a 0/1 flag with another value"),
    *_pair_rules("raw_candidates"),
    Rule("raw_candidates", "score_not_finite", "isnan(score) OR abs(score) = double('inf')",
         "logged fused score NaN or infinite"),
    Rule("raw_candidates", "too_many_candidates",
         "cand_index < 0 OR cand_index >= {candidates}",
         "cand_index outside [0, data.candidates): more candidates than the K slots"),
    Rule("raw_candidates", "position_mismatch",
         f"CASE WHEN exposed THEN position IS NULL OR position != cand_index "
         f"OR cand_index >= {L} ELSE position IS NOT NULL END",
         f"an exposed candidate whose position is not its cand_index (< {L}), or an "
         "unexposed one with a position"),
)

# Rules that need windows or other tables, by table (documented where they are computed).
CROSS_RULES: dict[str, tuple[str, ...]] = {
    "raw_users": (),
    "raw_items": (),
    "raw_requests": ("unknown_user", "ts_out_of_order", "request_index_gap", "no_exposures",
                     "no_candidates", "mixed_arms"),
    "raw_exposures": ("orphan_exposure", "unknown_item", "duplicate_item_in_list",
                      "missing_feedback"),
    "raw_feedback": ("orphan_feedback",),
    "raw_candidates": ("orphan_candidate", "unknown_item", "duplicate_item_in_candidates",
                       "outside_box", "exposure_mismatch"),
}
COMMON_RULES = ("wrong_partition", "null_key", "null_value", "duplicate_key", "duplicate_row")


class ValidationError(UserError, RuntimeError):
    """A hard rule failed: the day is not loaded into bronze."""


def rule_names(table: str) -> list[str]:
    """Every soft rule of `table`, in priority order, then the cascade rule."""
    own = [r.name for r in RULES if r.table == table]
    return [*COMMON_RULES, *own, *CROSS_RULES[table]] + (
        [SESSION_RULE] if table in SESSION_TABLES else [])


def day_bounds_ms(ds: str) -> tuple[int, int]:
    import datetime as dt

    d0 = dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC)
    start = int(d0.timestamp() * 1000)
    return start, start + 86_400_000


def row_rules(table: str, cols: Sequence[str], cfg: PipelineConfig, ds: str
              ) -> list[tuple[str, Column]]:
    """(name, broken?) columns of the row-local rules of `table` (null-safe)."""
    day0, day1 = day_bounds_ms(ds)
    params = {"day0_ms": day0, "day1_ms": day1, "max_watch": cfg.quality.max_watch_time_s,
              "valid_s": cfg.quality.valid_watch_s, "candidates": cfg.data.candidates,
              "arms": ", ".join(f"'{a}'" for a, _ in cfg.ab.shares())}
    keys = KEYS[table]
    values = [c for c in cols if c not in NULLABLE.get(table, ())]
    out = [("wrong_partition", F.col("ds") != F.lit(ds)),
           ("null_key", F.expr(" OR ".join(f"`{k}` IS NULL" for k in keys))),
           ("null_value", F.expr(" OR ".join(f"`{c}` IS NULL" for c in values)))]
    out += [(r.name, F.expr(r.sql.format(**params))) for r in RULES if r.table == table]
    return [(name, F.coalesce(cond, F.lit(True))) for name, cond in out]


def check_schema(table: str, landed: DataFrame, target: DataFrame) -> None:
    """Hard rule `schema_drift`: same column names and types as the bronze table."""
    want = {f.name: f.dataType.simpleString() for f in target.schema.fields}
    got = {f.name: f.dataType.simpleString() for f in landed.schema.fields}
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    retyped = sorted(f"{c}: {got[c]} (expected {want[c]})" for c in set(want) & set(got)
                     if got[c] != want[c])
    if missing or extra or retyped:
        parts = [f"missing {missing}" if missing else "", f"extra {extra}" if extra else "",
                 f"retyped {retyped}" if retyped else ""]
        raise ValidationError(f"schema_drift in {table}: "
                              + "; ".join(p for p in parts if p))


def _key_col(table: str) -> Column:
    """The key as text, `a/b` for two columns; null when a key column is null."""
    parts: list[Column] = []
    for k in KEYS[table]:
        parts += [F.lit("/"), F.col(f"`{k}`").cast("string")]
    return F.concat(*parts[1:])


def _duplicate_flags(df: DataFrame, table: str, cols: Sequence[str]) -> DataFrame:
    """`_dup_row`: an exact copy of an earlier row; `_dup_key`: same key, other content."""
    keys = [F.col(f"`{k}`") for k in KEYS[table]]
    by_key = Window.partitionBy(*keys)
    content = F.xxhash64(F.to_json(F.struct(*[F.col(f"`{c}`") for c in cols])))
    by_row = Window.partitionBy(*keys, "_content").orderBy("_content")
    return (df.withColumn("_content", content)
            .withColumn("_n_versions", F.size(F.collect_set("_content").over(by_key)))
            .withColumn("_copy", F.row_number().over(by_row))
            .withColumn("_dup_key", F.col("_n_versions") > 1)
            .withColumn("_dup_row", (F.col("_n_versions") == 1) & (F.col("_copy") > 1)))


def _has(df: DataFrame, other: DataFrame, on: Sequence[str], flag: str) -> DataFrame:
    """Left join a boolean `flag`: is the row's key present in `other`?"""
    not_null = [F.col(c).isNotNull() for c in on]
    cond = not_null[0]
    for c in not_null[1:]:
        cond = cond & c
    present = other.select(*on).where(cond).dropDuplicates().withColumn(flag, F.lit(True))
    return df.join(present, on=list(on), how="left").fillna({flag: False})


def _cut(df: DataFrame) -> DataFrame:
    """Compute `df` once and cut its lineage: the rules stack windows and joins over six
    tables, and without cuts every later action re-plans and re-runs all of it (measured:
    ~30 s per table on a 120-user day, against a few seconds with the cuts). Local
    checkpoints live in the executors' block stores; with dynamic allocation on a cluster,
    set spark.dynamicAllocation.shuffleTracking or keep executors for the job's length."""
    return df.localCheckpoint(eager=True)


def _rules_array(named: Sequence[tuple[str, Column]]) -> Column:
    return F.filter(F.array(*[F.when(c, F.lit(n)) for n, c in named]), lambda x: x.isNotNull())


def annotate(landed: dict[str, DataFrame], cfg: PipelineConfig, ds: str
             ) -> dict[str, DataFrame]:
    """Each landed table with `_rules` (every soft rule broken, cascade included) and
    `_key`. Pure: DataFrames in, DataFrames out (the tests call it on explicit rows)."""
    cols = {t: [c for c in landed[t].columns if not c.startswith("_")] for t in BRONZE}
    out: dict[str, DataFrame] = {}
    own: dict[str, DataFrame] = {}
    for t in BRONZE:
        df = _duplicate_flags(landed[t], t, cols[t])
        named = row_rules(t, cols[t], cfg, ds)
        named += [("duplicate_key", F.col("_dup_key")), ("duplicate_row", F.col("_dup_row"))]
        own[t] = _cut(df.withColumn("_rules", _rules_array(named))
                      .select(*cols[t], "_rules", "_dup_row"))

    ok = {t: own[t].where(F.size("_rules") == 0) for t in ("raw_users", "raw_items")}
    # requests: unknown user, timestamps out of order, holes in request_index, no exposure
    # (a request that showed nothing would otherwise vanish from enhanced_state and cut its
    # session's TD chain silently), no candidate on a day that logged candidates (a day
    # without any candidate row, sim.logged_candidates = 0, is valid), a user logged in two
    # A/B arms (an arm is a function of the user: core/ab.py)
    req = _has(own["raw_requests"], ok["raw_users"], ["user_id"], "_user_ok")
    req = _has(req, landed["raw_exposures"], ["request_id"], "_exposed")
    cands = landed["raw_candidates"].where(F.col("request_id").isNotNull())
    day_has_candidates = bool(cands.limit(1).count())
    req = _has(req, cands, ["request_id"], "_has_candidates")
    sess = Window.partitionBy("session_id").orderBy("request_index", "ts_ms", "request_id")
    # (exact duplicate rows share index and time, so they break neither rule below)
    req = (req.withColumn("_prev_ts", F.lag("ts_ms").over(sess))
           .withColumn("_prev_index", F.lag("request_index").over(sess))
           .withColumn("_pos", F.dense_rank().over(
               Window.partitionBy("session_id").orderBy("request_index")) - 1))
    out_of_order = (F.col("ts_ms") < F.col("_prev_ts")) | (
        (F.col("ts_ms") == F.col("_prev_ts")) & (F.col("request_index") != F.col("_prev_index")))
    req = req.withColumn("_rules", F.concat("_rules", _rules_array([
        ("unknown_user", ~F.col("_user_ok")),
        ("ts_out_of_order", F.coalesce(out_of_order, F.lit(False))),
        ("request_index_gap", F.coalesce(F.col("request_index") != F.col("_pos"),
                                         F.lit(True))),
        ("no_exposures", ~F.col("_exposed")),
        ("no_candidates", ~F.col("_has_candidates") & F.lit(day_has_candidates)),
        ("mixed_arms", F.size(F.collect_set("arm").over(Window.partitionBy("user_id"))) > 1)])))
    # exposures: orphan (no request), unknown item, an item twice in a list, no feedback
    exp = _has(own["raw_exposures"], landed["raw_requests"], ["request_id"], "_req_ok")
    exp = _has(exp, ok["raw_items"], ["item_id"], "_item_ok")
    exp = _has(exp, landed["raw_feedback"], ["request_id", "item_id"], "_fb_ok")
    per_item = Window.partitionBy("request_id", "item_id")
    exp = exp.withColumn("_rules", F.concat("_rules", _rules_array([
        ("orphan_exposure", ~F.col("_req_ok")),
        ("unknown_item", ~F.col("_item_ok")),
        ("duplicate_item_in_list", F.size(F.collect_set("position").over(per_item)) > 1),
        ("missing_feedback", ~F.col("_fb_ok"))])))
    fb = _has(own["raw_feedback"], landed["raw_exposures"], ["request_id", "item_id"],
              "_exp_ok")
    fb = _has(fb, landed["raw_requests"], ["request_id"], "_req_ok")
    fb = fb.withColumn("_rules", F.concat("_rules", _rules_array([
        ("orphan_feedback", ~F.col("_exp_ok") | ~F.col("_req_ok"))])))
    cand = _candidate_rules(own["raw_candidates"], landed, ok["raw_items"])

    # cascade: any cascading failure in a session quarantines the whole session
    def failing(df: DataFrame) -> Column:
        return F.size(F.array_except("_rules", F.array(*map(F.lit, NOT_CASCADED)))) > 0

    req, exp, fb, cand = _cut(req), _cut(exp), _cut(fb), _cut(cand)
    session_of = (landed["raw_requests"].where(F.col("request_id").isNotNull())
                  .groupBy("request_id").agg(F.min("session_id").alias("_session")))
    exp = exp.join(session_of, "request_id", "left")
    fb = fb.join(session_of, "request_id", "left")
    cand = cand.join(session_of, "request_id", "left")
    req = req.withColumn("_session", F.col("session_id"))
    bad = (req.where(failing(req)).select("_session")
           .unionByName(exp.where(failing(exp)).select("_session"))
           .unionByName(fb.where(failing(fb)).select("_session"))
           .unionByName(cand.where(failing(cand)).select("_session"))
           .where(F.col("_session").isNotNull()).distinct()
           .withColumn("_bad_session", F.lit(True)))
    for t, df in (("raw_requests", req), ("raw_exposures", exp), ("raw_feedback", fb),
                  ("raw_candidates", cand)):
        df = df.join(bad, "_session", "left")
        df = df.withColumn("_rules", F.when(
            (F.size("_rules") == 0) & F.coalesce(F.col("_bad_session"), F.lit(False)),
            F.array(F.lit(SESSION_RULE))).otherwise(F.col("_rules")))
        out[t] = df
    for t in ("raw_users", "raw_items"):
        out[t] = own[t]
    return {t: out[t].select(*cols[t], "_rules", _key_col(t).alias("_key")) for t in BRONZE}


def _candidate_rules(cand: DataFrame, landed: dict[str, DataFrame], items_ok: DataFrame
                     ) -> DataFrame:
    """The cross rules of raw_candidates, added to `_rules` of `cand` (its own rules):

    * `orphan_candidate`: no landed request with its request id;
    * `unknown_item`: an item not in the (valid) catalogue;
    * `duplicate_item_in_candidates`: the same item at two cand_index of one request;
    * `outside_box`: |action - mu_bp| beyond the request's explore_half_width in some
      dimension (BOX_TOLERANCE of float32 slack): not an action the box allowed;
    * `exposure_mismatch`, for every candidate row of the request: the exposed candidates
      are not exactly the request's landed exposures (same item at the same position), or
      an unexposed candidate scores higher than an exposed one (the exposed are not the top
      l by logged score)."""
    rid = F.col("request_id").isNotNull()
    c = landed["raw_candidates"].where(rid)
    requests = (landed["raw_requests"].where(rid).groupBy("request_id")
                .agg(F.max("explore_half_width").alias("_half_width"),
                     F.lit(True).alias("_req_ok")))
    out = cand.join(requests, "request_id", "left")
    out = _has(out, items_ok, ["item_id"], "_item_ok")
    on = ["request_id", "position", "item_id"]
    shown = landed["raw_exposures"].where(rid).select(*on).distinct().withColumn(
        "_e", F.lit(True))
    picked = c.where(F.col("exposed")).select(*on).distinct().withColumn("_c", F.lit(True))
    unmatched = (shown.join(picked, on, "full").where(F.col("_e").isNull()
                                                      | F.col("_c").isNull())
                 .select("request_id"))
    misranked = (c.groupBy("request_id")
                 .agg(F.min(F.when(F.col("exposed"), F.col("score"))).alias("_lo"),
                      F.max(F.when(~F.col("exposed"), F.col("score"))).alias("_hi"))
                 .where(F.col("_hi") > F.col("_lo")).select("request_id"))
    out = _has(out, unmatched.unionByName(misranked), ["request_id"], "_mismatch")
    per_item = Window.partitionBy("request_id", "item_id")
    gap = F.exists(F.arrays_zip("action", "mu_bp"), lambda p: F.abs(
        p["action"] - p["mu_bp"]) > F.col("_half_width") + F.lit(BOX_TOLERANCE))
    return out.withColumn("_rules", F.concat("_rules", _rules_array([
        ("orphan_candidate", F.col("_req_ok").isNull()),
        ("unknown_item", ~F.col("_item_ok")),
        ("duplicate_item_in_candidates",
         F.size(F.collect_set("cand_index").over(per_item)) > 1),
        ("outside_box", F.coalesce(gap, F.lit(False))),
        ("exposure_mismatch", F.col("_mismatch"))])))


def quarantine_rows(df: DataFrame, run_id: str, ds: str) -> DataFrame:
    cols = [c for c in df.columns if not c.startswith("_")]
    return (df.where(F.size("_rules") > 0)
            .select(F.lit(ds).alias("ds"), F.lit(run_id).alias("run_id"),
                    F.col("_rules")[0].alias("rule"), F.col("_rules").alias("rules"),
                    F.col("_key").alias("row_key"),
                    F.to_json(F.struct(*[F.col(f"`{c}`") for c in cols])).alias("record")))


def rule_counts(df: DataFrame, table: str) -> tuple[int, dict[str, int], int]:
    """(landed rows, rows per rule, rows quarantined) in one pass."""
    row = df.agg(F.count(F.lit(1)).alias("n"),
                 F.sum((F.size("_rules") > 0).cast("long")).alias("_quarantined"), *[
        F.sum(F.array_contains("_rules", r).cast("long")).alias(r) for r in rule_names(table)
    ]).first()
    return (int(row["n"]), {r: int(row[r] or 0) for r in rule_names(table)},
            int(row["_quarantined"] or 0))


def dq_rows(spark: SparkSession, ds: str, run_id: str,
            counts: dict[str, tuple[int, dict[str, int], int]]) -> DataFrame:
    rows = []
    for t, (n, per_rule, quarantined) in counts.items():
        for r, failed in per_rule.items():
            sev = "cascade" if r == SESSION_RULE else "soft"
            rows.append((ds, run_id, t, r, sev, n, failed))
        rows.append((ds, run_id, t, "_all", "summary", n, quarantined))
    return spark.createDataFrame(rows, "ds string, run_id string, table_name string, "
                                       "rule string, severity string, rows_checked long, "
                                       "rows_failed long")


def default_run_id(ds: str) -> str:
    return os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or f"manual__{ds}"


def run(spark: SparkSession, cfg: PipelineConfig, ds: str, run_id: str | None = None
        ) -> dict[str, dict[str, int]]:
    db = cfg.storage.database
    run_id = run_id or default_run_id(ds)
    ensure_tables(spark, db)
    missing = missing_landings(cfg, ds)
    if missing:
        raise ValidationError(f"missing_partition: no complete landed logs for ds={ds} in "
                              f"{', '.join(missing)}")
    landed, manifests = {}, {}
    for t in BRONZE:
        try:
            manifests[t] = verify_landing(cfg, t, ds)
        except LandingError as e:
            raise ValidationError(f"landing_mismatch: {e}") from None
        df = read_landing(spark, cfg, t, ds)
        check_schema(t, df, spark.table(qualified(db, t)))
        landed[t] = df
    annotated = {t: df.persist(StorageLevel.MEMORY_AND_DISK)
                 for t, df in annotate(landed, cfg, ds).items()}
    try:
        counts: dict[str, tuple[int, dict[str, int], int]] = {
            t: rule_counts(annotated[t], t) for t in BRONZE}
        for t in BRONZE:  # landed = what upstream said it wrote
            if counts[t][0] != manifests[t]["rows"]:
                raise ValidationError(f"landing_mismatch: read {counts[t][0]} rows of {t}, "
                                      f"its manifest says {manifests[t]['rows']}")
        if counts["raw_requests"][0] == 0:
            raise ValidationError(f"no_requests: the landed raw_requests of ds={ds} are empty")
        for t in BRONZE:
            q = counts[t][2]
            written = write_partition(quarantine_rows(annotated[t], run_id, ds), db,
                                      f"{t}_quarantine", ds)
            if written != q:
                raise ValidationError(f"reconciliation failed for {t}_quarantine: wrote "
                                      f"{written} rows, {q} rows broke a rule")
        write_partition(dq_rows(spark, ds, run_id, counts), db, "dq_metrics", ds)
        _check_fractions(annotated, counts, cfg)
        n_req, _, q_req = counts["raw_requests"]
        if n_req - q_req == 0:  # before any bronze write: bronze keeps its previous state
            raise ValidationError(f"no_requests: no valid request left for ds={ds} "
                                  f"({q_req} of {n_req} quarantined)")
        summary = {}
        for t in BRONZE:
            accepted = write_partition(annotated[t].where(F.size("_rules") == 0), db, t, ds)
            n, per_rule, q = counts[t]
            if accepted + q != n:  # the reconciliation, checked, not assumed
                raise ValidationError(f"reconciliation failed for {t}: landed {n} != "
                                      f"accepted {accepted} + quarantined {q}")
            summary[t] = {"landed": n, "accepted": accepted, "quarantined": q,
                          **{r: c for r, c in per_rule.items() if c}}
            log.info("%s: landed %d = accepted %d + quarantined %d %s", t, n, accepted, q,
                     {r: c for r, c in per_rule.items() if c})
        return summary
    finally:
        for df in annotated.values():
            df.unpersist()


def _check_fractions(annotated: dict[str, DataFrame],
                     counts: dict[str, tuple[int, dict[str, int], int]],
                     cfg: PipelineConfig) -> None:
    limit = cfg.quality.max_quarantine_fraction
    problems = []
    for t, (n, per_rule, q) in counts.items():
        if n and q / n > limit:
            top = sorted(((c, r) for r, c in per_rule.items() if c), reverse=True)[:3]
            # example keys of the most frequent rule of the rows themselves (the cascade
            # only says that something else in their session was bad)
            own = [r for c, r in top if r != SESSION_RULE] or [r for c, r in top] \
                or [SESSION_RULE]
            keys = [r["_key"] for r in annotated[t].where(F.array_contains("_rules", own[0]))
                    .select("_key").orderBy("_key").limit(3).collect()]
            problems.append(f"{t}: {q} of {n} rows quarantined ({q / n:.1%} > {limit:.0%}); "
                            f"rules {', '.join(f'{r} {c}' for c, r in top)}; "
                            f"example keys of {own[0]}: {keys}")
    if problems:
        raise ValidationError("too_many_quarantined: " + " | ".join(problems))


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main(
        "validate-logs", __doc__, argv, lambda spark, cfg, a: run(spark, cfg, a.ds, a.run_id),
        extra=lambda p: p.add_argument("--run-id", default=None,
                                       help="lineage id (default $AIRFLOW_CTX_DAG_RUN_ID "
                                            "or manual__<ds>)"))


if __name__ == "__main__":
    raise SystemExit(main())
