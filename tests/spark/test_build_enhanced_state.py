"""build_enhanced_state on tiny explicit DataFrames: join, next-list link, done, rewards."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import schema as S

pytestmark = pytest.mark.spark
L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM
DS = "2030-05-01"
USER_COLS = ("ds string, user_id bigint, age_bucket int, gender int, region int, "
             "activity double, interest array<float>")
ITEM_COLS = ("ds string, item_id bigint, category int, author_id bigint, duration_s double, "
             "item_vec array<float>, popularity double")
REQ_COLS = ("ds string, request_id string, session_id string, user_id bigint, "
            "request_index int, ts_ms bigint, hour int, device int, network int, "
            "policy_version string, action array<float>, mu_bp array<float>, "
            "noise array<float>, explore_half_width double, n_candidates int, "
            "cand_pred_mean array<float>, cand_pred_std array<float>")
EXP_COLS = ("ds string, request_id string, item_id bigint, position int, "
            "preds array<float>, cand_rank array<float>, cand_z array<float>, "
            "action array<float>, mu_bp array<float>")
FB_COLS = ("ds string, request_id string, item_id bigint, watch_time_s double, valid int, "
           "finish int, `like` int, share int, collect int, skip int, exit_after_request int")


def _f(x, n):
    return [float(x)] * n


@pytest.fixture(scope="module")
def built(spark):
    from core.reward import RewardConfig
    from jobs.build_enhanced_state import build_enhanced_state
    from pipeline.config import DataConfig

    interest = [0.1 * (i + 1) for i in range(8)]
    users = spark.createDataFrame(
        [(DS, 1, 5, 1, 9, 0.5, interest), (DS, 2, 0, 0, 0, 0.0, _f(0, 8))], USER_COLS)
    items = spark.createDataFrame(
        [(DS, 10, 2, 100, 20.0, _f(1, 8), 0.3), (DS, 11, 0, 101, 60.0, _f(0.5, 8), 0.1),
         (DS, 12, 7, 102, 15.0, _f(-1, 8), 0.9)], ITEM_COLS)
    requests = spark.createDataFrame([
        (DS, "r0", "s1", 1, 0, 1000, 6, 1, 0, "p", _f(0.1, 10), _f(0.0, 10), _f(0.1, 10), 0.15,
         20, _f(0.4, 7), _f(0.1, 7)),
        (DS, "r1", "s1", 1, 1, 2000, 6, 1, 0, "p", _f(0.2, 10), _f(0.05, 10), _f(0.15, 10),
         0.15, 20, _f(0.5, 7), _f(0.2, 7)),
        (DS, "r2", "s2", 2, 0, 3000, 12, 2, 1, "p", _f(-0.1, 10), _f(0.0, 10), _f(-0.1, 10),
         0.15, 20, _f(0.3, 7), _f(0.1, 7)),
    ], REQ_COLS)
    exposures = spark.createDataFrame([
        (DS, "r0", 11, 1, _f(0.2, 7), _f(0.5, 7), _f(-0.1, 7), _f(0.1, 10), _f(0.0, 10)),
        (DS, "r0", 10, 0, _f(0.7, 7), _f(0.0, 7), _f(0.3, 7), _f(0.1, 10), _f(0.0, 10)),
        (DS, "r1", 12, 0, _f(0.6, 7), _f(0.0, 7), _f(0.2, 7), _f(0.2, 10), _f(0.05, 10)),
        (DS, "r1", 10, 1, _f(0.5, 7), _f(0.1, 7), _f(0.1, 7), _f(0.2, 10), _f(0.05, 10)),
        (DS, "r1", 11, 2, _f(0.4, 7), _f(0.2, 7), _f(0.0, 7), _f(0.2, 10), _f(0.05, 10)),
        (DS, "r2", 10, 0, _f(0.3, 7), _f(0.0, 7), _f(0.0, 7), _f(-0.1, 10), _f(0.0, 10)),
    ], EXP_COLS)
    feedback = spark.createDataFrame([
        (DS, "r0", 10, 30.0, 1, 0, 1, 0, 0, 0, 0),
        (DS, "r0", 11, 2.0, 0, 0, 0, 0, 0, 1, 0),
        (DS, "r1", 12, 12.0, 1, 0, 0, 1, 0, 0, 1),
        (DS, "r1", 10, 0.0, 0, 0, 0, 0, 0, 1, 1),
        (DS, "r1", 11, 60.0, 1, 1, 0, 0, 1, 0, 1),
        (DS, "r2", 10, 5.0, 0, 0, 0, 0, 0, 0, 1),
    ], FB_COLS)
    reward = RewardConfig(w_watch=1.0, w_valid=1.0, w_like=2.0, w_share=3.0, w_collect=4.0)
    es, us = build_enhanced_state(users, items, requests, exposures, feedback, reward,
                                  DataConfig(eval_fraction=0.0))
    es_rows = {r["request_id"]: r.asDict() for r in es.collect()}
    us_rows = {r["request_id"]: r.asDict() for r in us.collect()}
    return es_rows, us_rows, es, us


def test_one_row_per_request_and_table_schema(built, spark, cfg):
    es_rows, us_rows, es, us = built
    assert set(es_rows) == {"r0", "r1", "r2"} and set(us_rows) == {"r0", "r1", "r2"}
    target = spark.table(f"{cfg.storage.database}.enhanced_state").columns
    assert es.columns == target
    assert us.columns == spark.table(f"{cfg.storage.database}.user_state").columns


def test_lists_are_ordered_padded_and_masked(built):
    es = built[0]
    r0 = es["r0"]
    assert r0["n_items"] == 2
    assert r0["mask"] == [1, 1, 0, 0, 0]
    assert r0["item_ids"] == [10, 11, -1, -1, -1]
    ps = np.array(r0["pair_state"]).reshape(L, D)
    # position 0 is item 10 (preds 0.7), position 1 item 11 (preds 0.2), the rest is padding
    assert np.allclose(ps[0, S.OFFSET_PRED:S.OFFSET_PRED + 7], 0.7)
    assert np.allclose(ps[1, S.OFFSET_PRED:S.OFFSET_PRED + 7], 0.2)
    assert np.all(ps[2:] == 0)
    assert len(r0["action"]) == L * A and len(r0["box_center"]) == L * A


def test_user_and_item_blocks_match_the_schema(built):
    ps0 = np.array(built[0]["r0"]["pair_state"]).reshape(L, D)
    user = ps0[0, :S.D_USER]
    expected_user = ([1.0, 1.0, 1.0, 0.5] + [0.1 * (i + 1) for i in range(8)]
                     + [math.sin(2 * math.pi * 6 / 24), math.cos(2 * math.pi * 6 / 24)]
                     + [0, 1, 0] + [0, 0, 0, 0])
    assert np.allclose(user, expected_user, atol=1e-6)
    item = ps0[0, S.OFFSET_ITEM:S.OFFSET_PRED]
    expected_item = [1.0] * 8 + [math.log1p(20.0) / 5, 0.3] + [0, 0, 1, 0, 0, 0, 0, 0]
    assert np.allclose(item, expected_item, atol=1e-6)
    # session-so-far stats at the second request: 32 s watched, 1 valid before it
    ps1 = np.array(built[0]["r1"]["pair_state"]).reshape(L, D)
    assert np.allclose(ps1[0, 18:21], [1 / 20, math.log1p(32.0) / 6, 0.1], atol=1e-6)


def test_rewards_per_critic_set(built):
    r0, r1 = built[0]["r0"], built[0]["r1"]
    assert np.allclose(r0["reward_watch"], [30 / 60, 2 / 60, 0, 0, 0])
    assert np.allclose(r0["reward_other"], [1 + 2, 0, 0, 0, 0])  # valid + like
    assert np.allclose(r1["reward_other"], [1 + 3, 0, 1 + 4, 0, 0])  # valid+share, -, valid+collect
    assert r0["valid"] == [1, 0, 0, 0, 0]
    us = built[1]
    assert us["r1"]["reward_watch"] == pytest.approx(72 / 60, rel=1e-6)
    assert us["r1"]["reward_other"] == pytest.approx(9.0)


def test_next_list_link_and_done(built):
    r0, r1, r2 = (built[0][k] for k in ("r0", "r1", "r2"))
    assert r0["done"] == 0.0
    assert r0["next_mask"] == [1, 1, 1, 0, 0]
    assert r0["next_pair_state"] == r1["pair_state"]
    assert r0["next_box_center"] == r1["box_center"]
    for r in (r1, r2):  # last request of its session
        assert r["done"] == 1.0
        assert not any(r["next_mask"]) and not any(r["next_pair_state"])
    us = built[1]
    assert us["r0"]["next_user_state"] == us["r1"]["user_state"]
    assert us["r0"]["done"] == 0.0 and us["r2"]["done"] == 1.0
    assert np.allclose(us["r0"]["next_box_center"], [0.05] * 10)


def test_user_state_layout(built):
    u = np.array(built[1]["r0"]["user_state"])
    assert u.shape == (S.USER_STATE_DIM,)
    assert np.allclose(u[S.D_USER:S.D_USER + 7], 0.4) and np.allclose(u[S.D_USER + 7:], 0.1)
    assert np.allclose(built[1]["r0"]["action"], 0.1)


def test_rebuild_is_deterministic(built):
    es = built[2]
    a = sorted(map(str, es.collect()))
    b = sorted(map(str, es.collect()))
    assert a == b


def test_next_list_needs_the_very_next_request_with_a_list(spark):
    """The next list is request_index + 1 of the session with a known user and exposures;
    a request without exposures, an unknown user or a gap in the indices ends the chain
    (done), and every logged request's feedback counts in the session-so-far stats."""
    from core.reward import RewardConfig
    from jobs.build_enhanced_state import build_enhanced_state
    from pipeline.config import DataConfig

    users = spark.createDataFrame([(DS, 1, 0, 0, 0, 0.0, _f(0, 8))], USER_COLS)
    items = spark.createDataFrame([(DS, 10, 0, 100, 20.0, _f(1, 8), 0.3)], ITEM_COLS)
    sessions = [("a0", "a", 1, 0), ("a1", "a", 1, 1), ("a2", "a", 1, 2), ("a3", "a", 9, 3),
                ("b0", "b", 1, 0), ("b2", "b", 1, 2), ("c0", "c", 1, 0), ("c1", "c", 1, 1)]
    requests = spark.createDataFrame(
        [(DS, rid, sid, uid, k, 1000 * k, 6, 0, 0, "p", _f(0.1, 10), _f(k, 10), _f(0, 10), 0.1,
          20, _f(0.4, 7), _f(0.1, 7)) for rid, sid, uid, k in sessions], REQ_COLS)
    with_list = ["a0", "a2", "a3", "b0", "b2", "c0", "c1"]  # a1 has feedback but no exposure
    exposures = spark.createDataFrame(
        [(DS, rid, 10, 0, _f(0.5, 7), _f(0, 7), _f(0, 7), _f(0.1, 10), _f(0, 10))
         for rid in with_list], EXP_COLS)
    feedback = spark.createDataFrame(
        [(DS, rid, 10, 10.0, 1, 0, 0, 0, 0, 0, 0) for rid in [*with_list, "a1"]], FB_COLS)
    es, us = build_enhanced_state(users, items, requests, exposures, feedback,
                                  RewardConfig(), DataConfig(eval_fraction=0.0))
    rows = {r["request_id"]: r for r in es.collect()}
    assert set(rows) == {"a0", "a2", "b0", "b2", "c0", "c1"}  # a1: no list; a3: unknown user
    done = {k: r["done"] for k, r in rows.items()}
    assert done == {"a0": 1.0, "a2": 1.0, "b0": 1.0, "b2": 1.0, "c0": 0.0, "c1": 1.0}
    assert not any(rows["a0"]["next_mask"]) and rows["c0"]["next_mask"] == [1, 0, 0, 0, 0]
    assert rows["c0"]["next_pair_state"] == rows["c1"]["pair_state"]
    # a2 saw a0 and a1 before it: 20 s watched, 2 valid
    ps = np.array(rows["a2"]["pair_state"]).reshape(L, D)
    assert np.allclose(ps[0, 19:21], [math.log1p(20.0) / 6, 0.2], atol=1e-6)
    assert {r["request_id"]: r["done"] for r in us.collect()} == done
