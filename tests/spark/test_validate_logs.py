"""validate_logs: one crafted bad row per rule in an otherwise clean simulated day.

Each corruption hits its own session, so the row's first rule is the one planted and the
session cascade can be checked separately. Then the job end to end on landed files:
bronze = landed - quarantined per table, dq_metrics, the hard rules, rerun equality.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from store.tables import BRONZE

pytestmark = pytest.mark.spark
DS = "2030-05-01"
DAY1_MS = 1_903_910_400_000  # 2030-05-02T00:00Z


@pytest.fixture(scope="module")
def clean(cfg) -> dict[str, pd.DataFrame]:
    from core.policy import FixedWeightsPolicy
    from sim import World, simulate_day

    logs = simulate_day(World.build(cfg.sim, n_users=120), FixedWeightsPolicy(), DS,
                        explore=True)
    return {t: getattr(logs, t).reset_index(drop=True) for t in BRONZE}


class Plan:
    """Corruptions of a copy of the clean day, each on a session of its own."""

    def __init__(self, clean: dict[str, pd.DataFrame]):
        self.f = {t: df.copy() for t, df in clean.items()}
        for t in self.f:  # object columns, so that any cell can become None / a bad value
            self.f[t] = self.f[t].astype(object)
        req = clean["raw_requests"]
        sizes = req.groupby("session_id").size()
        self.long_sessions = [s for s in sizes.index if sizes[s] >= 3]
        self.short_sessions = [s for s in sizes.index if sizes[s] < 3]
        self.used_users: set[int] = set()
        self.used_sessions: set[str] = set()
        self.expect: list[tuple[str, str, str]] = []  # (table, key, rule)
        self.item_of_exposure = {}

    def session(self, long: bool = False) -> str:
        pool = self.long_sessions if long else self.short_sessions + self.long_sessions
        req = self.f["raw_requests"]
        for s in pool:
            user = int(req.loc[req.session_id == s, "user_id"].iloc[0])
            if s not in self.used_sessions and user not in self.used_users:
                self.used_sessions.add(s)
                self.used_users.add(user)
                return s
        raise RuntimeError("not enough sessions for the plan")

    def request(self, long: bool = False, index: int = 0) -> str:
        req = self.f["raw_requests"]
        s = self.session(long)
        return req.loc[(req.session_id == s) & (req.request_index == index),
                       "request_id"].iloc[0]

    def set(self, table: str, mask: pd.Series, col: str, value) -> None:
        idx = mask[mask].index
        assert len(idx) >= 1
        for i in idx:
            self.f[table].at[i, col] = value

    def mask(self, table: str, **eq) -> pd.Series:
        df = self.f[table]
        m = pd.Series(True, index=df.index)
        for c, v in eq.items():
            m &= df[c] == v
        return m


def build_plan(clean: dict[str, pd.DataFrame]) -> Plan:
    p = Plan(clean)
    users = p.f["raw_users"]
    free_users = [int(u) for u in users.user_id
                  if u not in set(clean["raw_requests"].user_id)]

    def user_rule(rule: str, col: str, value, key_user: int | None = None) -> None:
        req = p.f["raw_requests"]
        s = p.session()
        u = int(req.loc[req.session_id == s, "user_id"].iloc[0])
        p.set("raw_users", p.mask("raw_users", user_id=u), col, value)
        p.expect.append(("raw_users", str(u) if rule != "null_key" else None, rule))
        p.expect.append(("raw_requests", req.loc[req.session_id == s, "request_id"].iloc[0],
                         "unknown_user"))

    user_rule("null_key", "user_id", None)
    user_rule("interest_length", "interest", np.zeros(7, np.float32))
    user_rule("activity_range", "activity", 1.5)
    user_rule("category_range", "region", 99)
    # an exact copy of a user row: the copy goes, the user and their sessions stay
    u = free_users[0] if free_users else int(users.user_id.iloc[-1])
    dup = p.f["raw_users"][p.f["raw_users"].user_id == u]
    p.f["raw_users"] = pd.concat([p.f["raw_users"], dup], ignore_index=True)
    p.expect.append(("raw_users", str(u), "duplicate_row"))

    items = p.f["raw_items"]
    # items nobody saw or logged as a candidate: a bad item row quarantines no session
    exposed = set(clean["raw_exposures"].item_id) | set(clean["raw_candidates"].item_id)
    unexposed = [int(i) for i in items.item_id if i not in exposed]
    for rule, col, value in (("item_vec_length", "item_vec", np.zeros(3, np.float32)),
                             ("duration_range", "duration_s", 0.0),
                             ("popularity_range", "popularity", float("nan")),
                             ("category_range", "category", 99)):
        i = unexposed.pop()
        p.set("raw_items", p.mask("raw_items", item_id=i), col, value)
        p.expect.append(("raw_items", str(i), rule))

    def req_rule(rule: str, col: str, value, long: bool = False, index: int = 0) -> str:
        rid = p.request(long, index)
        p.set("raw_requests", p.mask("raw_requests", request_id=rid), col, value)
        p.expect.append(("raw_requests", rid, rule))
        return rid

    req_rule("null_value", "policy_version", None)
    req_rule("action_length", "action", np.zeros(9, np.float32))
    bad_mu = np.zeros(10, np.float32)
    bad_mu[3] = 1.5
    req_rule("action_range", "mu_bp", bad_mu)
    nan_act = np.zeros(10, np.float32)
    nan_act[0] = np.nan
    req_rule("action_range", "action", nan_act)
    req_rule("cand_stats_length", "cand_pred_std", np.zeros(6, np.float32))
    req_rule("context_range", "hour", 24)
    req_rule("wrong_partition", "ds", "2030-04-30")
    rid = req_rule("crosses_midnight", "ts_ms", DAY1_MS + 5_000, long=True, index=2)
    # the rest of that session follows it
    s_mid = p.f["raw_requests"].loc[p.mask("raw_requests", request_id=rid), "session_id"].iloc[0]
    # ts out of order: request 1 before request 0
    rid1 = p.request(long=True, index=1)
    req = p.f["raw_requests"]
    s = req.loc[req.request_id == rid1, "session_id"].iloc[0]
    t0 = req.loc[(req.session_id == s) & (req.request_index == 0), "ts_ms"].iloc[0]
    p.set("raw_requests", p.mask("raw_requests", request_id=rid1), "ts_ms", int(t0) - 1000)
    p.expect.append(("raw_requests", rid1, "ts_out_of_order"))
    # a hole in request_index
    rid = p.request(long=True, index=2)
    p.set("raw_requests", p.mask("raw_requests", request_id=rid), "request_index", 7)
    p.expect.append(("raw_requests", rid, "request_index_gap"))
    # same request id, other content: both copies go
    rid = p.request()
    copy = p.f["raw_requests"][p.f["raw_requests"].request_id == rid].copy()
    copy["hour"] = (int(copy["hour"].iloc[0]) + 1) % 24
    p.f["raw_requests"] = pd.concat([p.f["raw_requests"], copy], ignore_index=True)
    p.expect.append(("raw_requests", rid, "duplicate_key"))
    req_rule("unknown_arm", "arm", "canary")  # the test profile serves no canary
    req_rule("mixed_arms", "arm", "holdout", long=True)  # the rest of the user: current

    def exp_rule(rule: str, col: str, value, position: int = 0) -> str:
        rid = p.request()
        m = p.mask("raw_exposures", request_id=rid, position=position)
        p.set("raw_exposures", m, col, value)
        p.expect.append(("raw_exposures", f"{rid}/{position}", rule))
        return rid

    bad_pred = np.full(7, 0.5, np.float32)
    bad_pred[2] = 1.2
    exp_rule("pred_range", "preds", bad_pred)
    nan_pred = np.full(7, 0.5, np.float32)
    nan_pred[0] = np.inf
    exp_rule("pred_range", "preds", nan_pred)
    exp_rule("vector_length", "cand_z", np.zeros(6, np.float32))
    bad_a = np.zeros(10, np.float32)
    bad_a[9] = -1.5
    exp_rule("action_range", "action", bad_a)
    # position 4 -> 5: a list longer than l
    rid = p.request()
    p.set("raw_exposures", p.mask("raw_exposures", request_id=rid, position=4), "position", 5)
    p.expect.append(("raw_exposures", f"{rid}/5", "list_too_long"))
    # an item not in the catalogue (its feedback row follows it)
    rid = p.request()
    m = p.mask("raw_exposures", request_id=rid, position=1)
    item = int(p.f["raw_exposures"].loc[m, "item_id"].iloc[0])
    p.set("raw_exposures", m, "item_id", 10**9)
    p.set("raw_feedback", p.mask("raw_feedback", request_id=rid, item_id=item), "item_id",
          10**9)
    p.expect.append(("raw_exposures", f"{rid}/1", "unknown_item"))
    # the same item twice in one list
    rid = p.request()
    e = p.f["raw_exposures"]
    item0 = int(e.loc[(e.request_id == rid) & (e.position == 0), "item_id"].iloc[0])
    item2 = int(e.loc[(e.request_id == rid) & (e.position == 2), "item_id"].iloc[0])
    p.set("raw_exposures", p.mask("raw_exposures", request_id=rid, position=2), "item_id",
          item0)
    p.f["raw_feedback"] = p.f["raw_feedback"][~p.mask("raw_feedback", request_id=rid,
                                                      item_id=item2)]
    p.expect.append(("raw_exposures", f"{rid}/2", "duplicate_item_in_list"))
    # an exposure without feedback
    rid = p.request()
    e = p.f["raw_exposures"]
    item3 = int(e.loc[(e.request_id == rid) & (e.position == 3), "item_id"].iloc[0])
    p.f["raw_feedback"] = p.f["raw_feedback"][~p.mask("raw_feedback", request_id=rid,
                                                      item_id=item3)]
    p.expect.append(("raw_exposures", f"{rid}/3", "missing_feedback"))
    # an exposure (and its feedback) of a request that does not exist
    rid = p.request()
    e = p.f["raw_exposures"]
    item4 = int(e.loc[(e.request_id == rid) & (e.position == 4), "item_id"].iloc[0])
    p.set("raw_exposures", p.mask("raw_exposures", request_id=rid, position=4), "request_id",
          "ghost-request")
    p.set("raw_feedback", p.mask("raw_feedback", request_id=rid, item_id=item4), "request_id",
          "ghost-request")
    p.set("raw_candidates", p.mask("raw_candidates", request_id=rid, cand_index=4),
          "request_id", "ghost-request")
    p.expect += [("raw_exposures", "ghost-request/4", "orphan_exposure"),
                 ("raw_candidates", "ghost-request/4", "orphan_candidate")]
    # the request keeps a valid (shorter) list: its session stays
    p.kept_sessions = {p.f["raw_requests"].loc[p.mask("raw_requests", request_id=rid),
                                               "session_id"].iloc[0]}

    def fb_rule(rule: str, col: str, value, extra: dict | None = None) -> None:
        rid = p.request()
        fb = p.f["raw_feedback"]
        item = int(fb.loc[fb.request_id == rid, "item_id"].iloc[0])
        m = p.mask("raw_feedback", request_id=rid, item_id=item)
        p.set("raw_feedback", m, col, value)
        for c, v in (extra or {}).items():
            p.set("raw_feedback", m, c, v)
        p.expect.append(("raw_feedback", f"{rid}/{item}", rule))

    fb_rule("watch_time_negative", "watch_time_s", -3.0, {"valid": 0})
    fb_rule("watch_time_absurd", "watch_time_s", 1e9, {"valid": 1})
    fb_rule("watch_time_absurd", "watch_time_s", float("nan"), {"valid": 0})
    fb_rule("valid_inconsistent", "watch_time_s", 50.0, {"valid": 0})
    fb_rule("flag_values", "like", 2)
    fb_rule("null_key", "request_id", None)
    p.expect[-1] = ("raw_feedback", None, "null_key")
    plant_non_finite_and_ids(p, unexposed, req_rule, exp_rule)
    plant_candidates(p)
    p.s_midnight = s_mid
    return p


def _with(n: int, i: int, value: float) -> np.ndarray:
    v = np.full(n, 0.1, np.float32)
    v[i] = value
    return v


def plant_non_finite_and_ids(p: Plan, unexposed: list[int], req_rule, exp_rule) -> None:
    """Non-finite elements inside right-length vectors, impossible box widths, negative ids
    and a request that exposed nothing: each quarantined under its own rule."""
    req = p.f["raw_requests"]
    s = p.session()
    u = int(req.loc[req.session_id == s, "user_id"].iloc[0])
    p.set("raw_users", p.mask("raw_users", user_id=u), "interest", _with(8, 3, np.nan))
    p.expect += [("raw_users", str(u), "vector_not_finite"),
                 ("raw_requests", req.loc[req.session_id == s, "request_id"].iloc[0],
                  "unknown_user")]
    s = p.session()
    u = int(req.loc[req.session_id == s, "user_id"].iloc[0])
    p.set("raw_users", p.mask("raw_users", user_id=u), "user_id", -7)
    p.expect.append(("raw_users", "-7", "negative_id"))
    i = unexposed.pop()
    p.set("raw_items", p.mask("raw_items", item_id=i), "item_vec", _with(8, 0, np.inf))
    p.expect.append(("raw_items", str(i), "vector_not_finite"))
    i = unexposed.pop()
    p.set("raw_items", p.mask("raw_items", item_id=i), "item_id", -1)
    p.expect.append(("raw_items", "-1", "negative_id"))
    req_rule("vector_not_finite", "noise", _with(10, 9, np.nan))
    req_rule("box_width", "explore_half_width", float("nan"))
    req_rule("box_width", "explore_half_width", 1e30)
    req_rule("box_width", "explore_half_width", -0.15)
    req_rule("negative_id", "user_id", -3)
    exp_rule("vector_not_finite", "cand_z", _with(7, 6, -np.inf))
    # a request whose list (and feedback) is missing entirely
    rid = p.request()
    p.f["raw_exposures"] = p.f["raw_exposures"][~p.mask("raw_exposures", request_id=rid)]
    p.f["raw_feedback"] = p.f["raw_feedback"][~p.mask("raw_feedback", request_id=rid)]
    p.expect.append(("raw_requests", rid, "no_exposures"))
    # an exposure and its feedback with item id -1
    rid = p.request()
    m = p.mask("raw_exposures", request_id=rid, position=1)
    item = int(p.f["raw_exposures"].loc[m, "item_id"].iloc[0])
    p.set("raw_exposures", m, "item_id", -1)
    p.set("raw_feedback", p.mask("raw_feedback", request_id=rid, item_id=item), "item_id", -1)
    p.expect += [("raw_exposures", f"{rid}/1", "negative_id"),
                 ("raw_feedback", f"{rid}/-1", "negative_id")]


def plant_candidates(p: Plan) -> None:
    """The rules of raw_candidates, each on a request of a session of its own (cand_index
    >= 5: a candidate that was not exposed, unless the rule is about the exposed ones)."""

    def cand_rule(rule: str, col: str, value, index: int = 7) -> str:
        rid = p.request()
        p.set("raw_candidates", p.mask("raw_candidates", request_id=rid, cand_index=index),
              col, value)
        p.expect.append(("raw_candidates", f"{rid}/{index}", rule))
        return rid

    cand_rule("negative_id", "item_id", -5)
    cand_rule("vector_length", "cand_z", np.zeros(6, np.float32))
    cand_rule("pred_range", "preds", _with(7, 1, 1.2))
    cand_rule("action_range", "action", _with(10, 9, -1.5))
    cand_rule("vector_not_finite", "cand_rank", _with(7, 2, np.nan))
    cand_rule("score_not_finite", "score", float("inf"))
    cand_rule("null_value", "exposed", None)
    cand_rule("position_mismatch", "position", 7)
    cand_rule("position_mismatch", "position", 3, index=2)  # exposed at 2, position 3
    cand_rule("unknown_item", "item_id", 10**9)
    # K exceeded: an eleventh candidate (test profile: data.candidates = 10)
    rid = p.request()
    c = p.f["raw_candidates"]
    extra = c[(c.request_id == rid) & (c.cand_index == 9)].copy()
    extra["cand_index"], extra["item_id"] = 10, 10**9 + 1
    p.f["raw_candidates"] = pd.concat([c, extra], ignore_index=True)
    p.set("raw_candidates", p.mask("raw_candidates", request_id=rid, cand_index=10),
          "position", None)  # (concat turned its NA into NaN)
    p.expect.append(("raw_candidates", f"{rid}/10", "too_many_candidates"))
    # the same item at two cand_index of one request
    rid = p.request()
    c = p.f["raw_candidates"]
    item9 = int(c.loc[(c.request_id == rid) & (c.cand_index == 9), "item_id"].iloc[0])
    p.set("raw_candidates", p.mask("raw_candidates", request_id=rid, cand_index=8), "item_id",
          item9)
    p.expect += [("raw_candidates", f"{rid}/8", "duplicate_item_in_candidates"),
                 ("raw_candidates", f"{rid}/9", "duplicate_item_in_candidates")]
    # an action outside the request's box (test profile: half-width 0.15)
    rid = p.request()
    m = p.mask("raw_candidates", request_id=rid, cand_index=6)
    mu = np.asarray(p.f["raw_candidates"].loc[m, "mu_bp"].iloc[0], np.float32)
    act = mu.copy()
    act[4] = mu[4] - 0.4 if mu[4] > 0 else mu[4] + 0.4
    p.set("raw_candidates", m, "action", act)
    p.expect.append(("raw_candidates", f"{rid}/6", "outside_box"))
    # reconciliation with the exposures: the exposed candidates at positions 0 and 1 swap
    # items (the exposures keep theirs); an unexposed candidate scoring above the exposed
    rid = p.request()
    c = p.f["raw_candidates"]
    m0, m1 = p.mask("raw_candidates", request_id=rid, cand_index=0), p.mask(
        "raw_candidates", request_id=rid, cand_index=1)
    i0, i1 = int(c.loc[m0, "item_id"].iloc[0]), int(c.loc[m1, "item_id"].iloc[0])
    p.set("raw_candidates", m0, "item_id", i1)
    p.set("raw_candidates", m1, "item_id", i0)
    p.expect += [("raw_candidates", f"{rid}/{k}", "exposure_mismatch") for k in range(10)]
    rid = p.request()
    c = p.f["raw_candidates"]
    top = float(c.loc[p.mask("raw_candidates", request_id=rid, cand_index=0), "score"].iloc[0])
    p.set("raw_candidates", p.mask("raw_candidates", request_id=rid, cand_index=5), "score",
          top + 1.0)
    p.expect += [("raw_candidates", f"{rid}/{k}", "exposure_mismatch") for k in (0, 5, 9)]
    # a request without any candidate on a day that logged candidates
    rid = p.request()
    p.f["raw_candidates"] = p.f["raw_candidates"][~p.mask("raw_candidates", request_id=rid)]
    p.expect.append(("raw_requests", rid, "no_candidates"))


def to_frames(spark, cfg, frames: dict[str, pd.DataFrame]):
    schema = {t: spark.table(f"{cfg.storage.database}.{t}").schema for t in BRONZE}
    out = {}
    for t, pdf in frames.items():
        nullable = T.StructType([T.StructField(f.name, f.dataType, True) for f in schema[t]])
        rows = [tuple(_py(v) for v in r) for r in pdf[[f.name for f in nullable]].itertuples(
            index=False, name=None)]
        out[t] = spark.createDataFrame(rows, nullable)
    return out


def _py(v):
    if v is pd.NA:  # raw_candidates.position of a candidate that was not exposed
        return None
    if isinstance(v, np.ndarray):
        return [float(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


@pytest.fixture(scope="module")
def planted(spark, cfg, clean):
    from jobs.validate_logs import annotate

    plan = build_plan(clean)
    frames = to_frames(spark, cfg, plan.f)
    ann = annotate(frames, cfg, DS)
    got = {t: [(r["_key"], list(r["_rules"])) for r in df.select("_key", "_rules").collect()]
           for t, df in ann.items()}
    return plan, got


def _rule_cases() -> list[str]:
    from jobs.validate_logs import rule_names

    return sorted({r for t in BRONZE for r in rule_names(t)})


def test_every_declared_rule_is_planted(clean):
    from jobs.validate_logs import rule_names

    planted = {(t, r) for t, _, r in build_plan(clean).expect}
    # rules that a clean simulated day cannot break through one cell are tested elsewhere
    untested = {(t, r) for t in BRONZE for r in rule_names(t)} - planted - {
        (t, "session_quarantined") for t in BRONZE} - {
        (t, "duplicate_key") for t in BRONZE if t != "raw_requests"} - {
        (t, "duplicate_row") for t in BRONZE if t != "raw_users"} - {
        (t, "null_key") for t in ("raw_items", "raw_requests", "raw_exposures",
                                  "raw_candidates")} - {
        (t, "null_value") for t in BRONZE if t != "raw_requests"} - {
        (t, "wrong_partition") for t in BRONZE if t != "raw_requests"} - {
        ("raw_feedback", "orphan_feedback")}
    assert untested == set()


@pytest.mark.parametrize("rule", _rule_cases())
def test_rule_quarantines_the_planted_row(planted, rule):
    plan, got = planted
    cases = [(t, k) for t, k, r in plan.expect if r == rule]
    if rule == "session_quarantined":
        # every other row of a session with a planted failure goes with it
        rows = [rules for key, rules in got["raw_requests"]
                if key and key.startswith(plan.s_midnight) and rules == [rule]]
        assert len(rows) >= 1
        return
    if rule == "orphan_feedback":  # the ghost request's feedback row
        cases = [("raw_feedback", None)]
        assert any(rules[:1] == [rule] and key.startswith("ghost-request")
                   for key, rules in got["raw_feedback"])
        return
    if not cases:
        pytest.skip(f"{rule}: shared rule, planted in another table")
    for table, key in cases:
        match = [rules for k, rules in got[table] if k == key]
        assert match, f"{table} row {key} not found"
        if rule == "duplicate_row":
            assert sorted(map(tuple, match)) == [(), ("duplicate_row",)]
        elif rule == "duplicate_key":
            assert len(match) == 2 and all(m[0] == rule for m in match)
        else:
            assert any(m and m[0] == rule for m in match), (table, key, match)


def test_cascade_keeps_clean_sessions_and_drops_whole_bad_ones(planted, clean):
    plan, got = planted
    bad_requests = {k for k, rules in got["raw_requests"] if rules}
    req = clean["raw_requests"]
    # untouched sessions (not planted, not of a planted user) are all accepted; the
    # duplicate user row does not poison its user's sessions
    untouched = set(req.loc[~req.session_id.isin(plan.used_sessions)
                            & ~req.user_id.isin(plan.used_users), "request_id"])
    assert len(untouched) > 100
    assert not (untouched & bad_requests)
    # every planted session is out, whole
    for s in plan.used_sessions - plan.kept_sessions:
        rids = set(req.loc[req.session_id == s, "request_id"])
        assert rids <= bad_requests | {None}, s
    # candidate rows follow their session both ways (a bad candidate row takes its
    # session: the sessions of the candidate plants are among the planted ones above)
    cands = [(key.split("/")[0], bool(rules)) for key, rules in got["raw_candidates"] if key]
    assert {r for r, bad in cands if r in untouched and bad} == set()
    assert len({r for r, bad in cands if r in untouched}) == len(untouched)
    planted_requests = set(req.loc[req.session_id.isin(plan.used_sessions - plan.kept_sessions),
                                   "request_id"])
    assert all(bad for r, bad in cands if r in planted_requests)


@pytest.fixture(scope="module")
def landed_run(spark, cfg, clean, tmp_path_factory):
    """The job end to end on landed files: clean day + a few bad rows."""
    from jobs.validate_logs import run
    from store.landing import write_landing

    plan = build_plan(clean)
    frames = to_frames(spark, cfg, plan.f)
    for t, df in frames.items():
        write_landing(df, cfg, t, DS)
    loose = dataclasses.replace(cfg, quality=dataclasses.replace(
        cfg.quality, max_quarantine_fraction=0.9))
    summary = run(spark, loose, DS, run_id="test-run")
    return plan, summary, frames


def for_day(clean: dict[str, pd.DataFrame], ds: str, shift_days: int
            ) -> dict[str, pd.DataFrame]:
    """The clean day moved to another day (partition and request times)."""
    out = {t: df.assign(ds=ds) for t, df in clean.items()}
    out["raw_requests"] = out["raw_requests"].assign(
        ts_ms=out["raw_requests"].ts_ms + shift_days * 86_400_000)
    return out


def _count(spark, sql: str) -> int:
    return int(spark.sql(sql).first()[0])


def test_counts_reconcile_per_table(spark, cfg, landed_run):
    _, summary, frames = landed_run
    db = cfg.storage.database
    for t in BRONZE:
        landed = frames[t].count()
        bronze = _count(spark, f"SELECT count(*) FROM {db}.{t} WHERE ds = '{DS}'")
        quarantined = _count(spark, f"SELECT count(*) FROM {db}.{t}_quarantine "
                                    f"WHERE ds = '{DS}'")
        assert landed == bronze + quarantined, t
        assert quarantined > 0, t
        row = spark.sql(f"SELECT rows_checked, rows_failed FROM {db}.dq_metrics "
                        f"WHERE ds = '{DS}' AND table_name = '{t}' AND rule = '_all'").first()
        assert (row["rows_checked"], row["rows_failed"]) == (landed, quarantined)
        assert summary[t]["accepted"] == bronze


def test_quarantine_keeps_the_whole_row_and_the_run_id(spark, cfg, landed_run):
    db = cfg.storage.database
    rows = spark.sql(f"SELECT * FROM {db}.raw_requests_quarantine WHERE ds = '{DS}' "
                     f"AND rule = 'context_range'").collect()
    assert len(rows) == 1 and rows[0]["run_id"] == "test-run"
    rec = json.loads(rows[0]["record"])
    assert rec["hour"] == 24 and rec["request_id"] == rows[0]["row_key"]
    assert len(rec["action"]) == 10
    per_rule = {r["rule"]: r["rows_failed"] for r in spark.sql(
        f"SELECT rule, rows_failed FROM {db}.dq_metrics WHERE ds = '{DS}' "
        f"AND table_name = 'raw_feedback'").collect()}
    assert per_rule["watch_time_absurd"] == 2 and per_rule["flag_values"] == 1


def test_bronze_holds_only_rows_that_pass(spark, cfg, landed_run):
    db = cfg.storage.database
    bad = spark.sql(f"SELECT count(*) FROM {db}.raw_feedback WHERE ds = '{DS}' AND "
                    f"(watch_time_s < 0 OR isnan(watch_time_s) OR `like` > 1)").first()[0]
    assert bad == 0
    assert _count(spark, f"SELECT count(*) FROM {db}.raw_requests WHERE ds = '{DS}' "
                         f"AND hour = 24") == 0


def test_rerun_with_same_run_id_gives_identical_tables(spark, cfg, landed_run):
    from jobs.validate_logs import run

    db = cfg.storage.database
    tables = [*BRONZE, *(f"{t}_quarantine" for t in BRONZE), "dq_metrics"]

    def snapshot():
        return {t: sorted(map(str, spark.sql(f"SELECT * FROM {db}.{t} WHERE ds = '{DS}'")
                              .collect())) for t in tables}

    before = snapshot()
    loose = dataclasses.replace(cfg, quality=dataclasses.replace(
        cfg.quality, max_quarantine_fraction=0.9))
    run(spark, loose, DS, run_id="test-run")
    assert snapshot() == before


def test_too_many_quarantined_fails_naming_table_rule_and_keys(spark, cfg, clean):
    from jobs.validate_logs import ValidationError, run
    from store.landing import write_landing

    ds = "2030-05-02"
    frames = to_frames(spark, cfg, for_day(clean, ds, 1))
    # a third of the feedback rows with a negative watch time
    frames["raw_feedback"] = frames["raw_feedback"].withColumn(
        "watch_time_s", F.when(F.xxhash64("request_id", "item_id") % 3 == 0, F.lit(-1.0))
        .otherwise(F.col("watch_time_s")))
    for t, df in frames.items():
        write_landing(df, cfg, t, ds)
    # (the bad feedback rows take most sessions with them: the message names the own rule)
    with pytest.raises(ValidationError, match=r"too_many_quarantined: .*raw_feedback: \d+ of "
                                              r"\d+ rows.*example keys of watch_time_negative"):
        run(spark, cfg, ds, run_id="r")
    db = cfg.storage.database
    # audit rows are there, bronze is not touched
    assert _count(spark, f"SELECT count(*) FROM {db}.raw_feedback_quarantine "
                         f"WHERE ds = '{ds}'") > 0
    assert _count(spark, f"SELECT count(*) FROM {db}.raw_feedback WHERE ds = '{ds}'") == 0


DRIFT_DS = "2030-05-03"


@pytest.fixture(scope="module")
def drift_day(spark, cfg, clean):
    """A clean day landed once; each drift test re-lands raw_requests only."""
    from store.landing import write_landing

    frames = to_frames(spark, cfg, for_day(clean, DRIFT_DS, 2))
    for t, df in frames.items():
        write_landing(df, cfg, t, DRIFT_DS)
    return frames


@pytest.mark.parametrize("drift", ["missing", "extra", "retyped"])
def test_schema_drift_is_a_hard_failure(spark, cfg, drift_day, drift):
    from jobs.validate_logs import ValidationError, run
    from store.landing import write_landing

    req = drift_day["raw_requests"]
    if drift == "missing":
        req = req.drop("hour")
    elif drift == "extra":
        req = req.withColumn("surprise", F.lit(1))
    else:
        req = req.withColumn("hour", F.col("hour").cast("string"))
    write_landing(req, cfg, "raw_requests", DRIFT_DS)
    with pytest.raises(ValidationError, match=rf"schema_drift in raw_requests: {drift}"):
        run(spark, cfg, DRIFT_DS, run_id="r")


def test_missing_partition_is_a_hard_failure(spark, cfg):
    from jobs.validate_logs import ValidationError, run

    with pytest.raises(ValidationError, match=r"missing_partition: .*raw_users.*raw_feedback"):
        run(spark, cfg, "2030-06-01", run_id="r")


def test_day_bounds():
    from jobs.validate_logs import day_bounds_ms

    start, end = day_bounds_ms(DS)
    assert end == DAY1_MS and end - start == 86_400_000
    assert not math.isnan(start)


def test_dirty_clean_empty_dirty_days_in_one_catalog(spark, cfg, clean):
    """Counts come from each day's own partitions: a clean day after a day with quarantined
    rows passes, an empty day fails on `no_requests` before touching anything, and a dirty
    day after them reconciles again (dq_metrics, quarantine and bronze agree per table)."""
    from jobs.validate_logs import ValidationError, run
    from store.landing import write_landing

    db = cfg.storage.database
    days = {"dirty": "2030-05-11", "clean": "2030-05-12", "empty": "2030-05-13",
            "dirty-again": "2030-05-14"}

    def land(kind: str, ds: str) -> dict:
        pdfs = for_day(clean, ds, (pd.Timestamp(ds) - pd.Timestamp(DS)).days)
        if kind.startswith("dirty"):  # three users missing: their sessions are quarantined
            users = pdfs["raw_users"]
            pdfs["raw_users"] = users[~users.user_id.isin(users.user_id.iloc[:3])]
        frames = to_frames(spark, cfg, pdfs)
        if kind == "empty":
            frames = {t: df.limit(0) for t, df in frames.items()}
        for t, df in frames.items():
            write_landing(df, cfg, t, ds)
        return {t: df.count() for t, df in frames.items()}

    def day_counts(ds: str) -> dict:
        return {t: (_count(spark, f"SELECT count(*) FROM {db}.{t} WHERE ds = '{ds}'"),
                    _count(spark, f"SELECT count(*) FROM {db}.{t}_quarantine "
                                  f"WHERE ds = '{ds}'")) for t in BRONZE}

    for kind, ds in days.items():
        landed = land(kind, ds)
        if kind == "empty":
            with pytest.raises(ValidationError, match="no_requests"):
                run(spark, cfg, ds, run_id=f"r-{kind}")
            assert day_counts(ds) == {t: (0, 0) for t in BRONZE}
            assert _count(spark, f"SELECT count(*) FROM {db}.dq_metrics "
                                 f"WHERE ds = '{ds}'") == 0
            continue
        summary = run(spark, cfg, ds, run_id=f"r-{kind}")
        got = day_counts(ds)
        for t in BRONZE:
            bronze, quarantined = got[t]
            assert bronze + quarantined == landed[t], (kind, t)
            assert summary[t] == {**summary[t], "landed": landed[t], "accepted": bronze,
                                  "quarantined": quarantined}, (kind, t)
            row = spark.sql(f"SELECT rows_checked, rows_failed FROM {db}.dq_metrics WHERE "
                            f"ds = '{ds}' AND table_name = '{t}' AND rule = '_all'").first()
            assert (row["rows_checked"], row["rows_failed"]) == (landed[t], quarantined)
        assert (got["raw_requests"][1] > 0) == kind.startswith("dirty"), kind
        if kind == "clean":
            assert all(q == 0 for _, q in got.values())


def test_landed_means_what_upstream_wrote(spark, cfg, clean):
    """A shard lost, emptied or added after landing fails the day with one line naming the
    table and the file, before a row is read; bronze stays untouched."""
    import os

    from jobs.validate_logs import ValidationError, run
    from store.landing import landing_path, write_landing

    ds = "2030-05-20"
    frames = to_frames(spark, cfg, for_day(clean, ds, 19))
    for t, df in frames.items():
        write_landing(df.repartition(2), cfg, t, ds)
    folder = landing_path(cfg, "raw_exposures", ds)
    part = sorted(n for n in os.listdir(folder) if n.endswith(".parquet"))[0]
    data = open(f"{folder}/{part}", "rb").read()
    open(f"{folder}/{part}", "wb").close()
    with pytest.raises(ValidationError, match=rf"landing_mismatch: landed raw_exposures "
                                              rf"ds={ds} .*{part} has 0 bytes"):
        run(spark, cfg, ds, run_id="r")
    os.remove(f"{folder}/{part}")
    with pytest.raises(ValidationError, match=rf"in the manifest are missing: {part}"):
        run(spark, cfg, ds, run_id="r")
    open(f"{folder}/{part}", "wb").write(data)
    open(f"{folder}/stray.csv", "w").write("a,b\n")
    with pytest.raises(ValidationError, match="not written by upstream: stray.csv"):
        run(spark, cfg, ds, run_id="r")
    os.remove(f"{folder}/stray.csv")
    summary = run(spark, cfg, ds, run_id="r")  # restored: the day loads, nothing lost
    assert summary["raw_exposures"]["landed"] == frames["raw_exposures"].count()
    assert summary["raw_exposures"]["quarantined"] == 0


def test_nullable_columns_are_the_ddl_ones(spark, cfg):
    """`null_value` spares exactly the columns the DDL leaves nullable."""
    from jobs.validate_logs import NULLABLE

    for t in BRONZE:
        schema = spark.table(f"{cfg.storage.database}.{t}").schema
        assert {f.name for f in schema if f.nullable} == set(NULLABLE.get(t, ())), t


@pytest.mark.parametrize("setting", ["sim.explore_per_candidate=true",
                                     "sim.logged_candidates=0"])
def test_simulated_day_validates_clean(spark, setting):
    """A day landed by the simulate job under a profile setting loads with nothing
    quarantined: per-candidate exploration (every candidate's action inside its box, the
    exposed the top l by score), and no logged candidates at all (raw_candidates landed
    empty, with its manifest)."""
    from jobs import simulate, validate_logs
    from pipeline.config import load_config
    from store.landing import verify_landing

    cfg = load_config("test", overrides=[setting, "sim.n_users=60"])
    ds = "2030-05-25" if setting.startswith("sim.explore") else "2030-05-26"
    landed = simulate.run(spark, cfg, ds)
    assert verify_landing(cfg, "raw_candidates", ds)["rows"] == landed["raw_candidates"]
    summary = validate_logs.run(spark, cfg, ds, run_id="r")
    assert {t: summary[t]["quarantined"] for t in BRONZE} == {t: 0 for t in BRONZE}
    assert {t: summary[t]["accepted"] for t in BRONZE} == landed
    db = cfg.storage.database
    row = spark.sql(f"SELECT count(*) AS n, count(position) AS shown, "
                    f"sum(CAST(exposed AS INT)) AS exposed FROM {db}.raw_candidates "
                    f"WHERE ds = '{ds}'").first()
    if setting.startswith("sim.explore"):
        assert row["n"] == 10 * landed["raw_requests"]
        assert row["shown"] == row["exposed"] == landed["raw_exposures"]
    else:
        assert landed["raw_candidates"] == row["n"] == 0
