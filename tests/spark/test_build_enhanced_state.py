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
CAND_COLS = ("ds string, request_id string, item_id bigint, cand_index int, "
             "preds array<float>, cand_rank array<float>, cand_z array<float>, "
             "action array<float>, mu_bp array<float>, score double, exposed boolean, "
             "position int")
K = 6  # candidate slots in the explicit-DataFrame tests


def _f(x, n):
    return [float(x)] * n


def _cand(rid, item, k, pred, center, score):
    exposed = k < L
    return (DS, rid, item, k, _f(pred, 7), _f(pred / 2, 7), _f(-pred, 7), _f(center, 10),
            _f(center, 10), score, exposed, k if exposed else None)


@pytest.fixture(scope="module")
def frames(spark):
    """The bronze tables of two sessions: s1 (r0 -> r1) and s2 (r2). Candidates: r0 has its
    two exposures and one more (cand_index 2); r1 its three exposures, cand_index 4 (3 is
    missing) and 9 (outside the K = 6 slots); r2 has no candidate rows."""
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
    candidates = spark.createDataFrame([
        # the exposed ones, with the exposures' logged values (cand_index = position)
        (DS, "r0", 10, 0, _f(0.7, 7), _f(0.0, 7), _f(0.3, 7), _f(0.1, 10), _f(0.0, 10), 3.0,
         True, 0),
        (DS, "r0", 11, 1, _f(0.2, 7), _f(0.5, 7), _f(-0.1, 7), _f(0.1, 10), _f(0.0, 10), 2.0,
         True, 1),
        _cand("r0", 12, 2, 0.1, 0.3, 1.0),
        (DS, "r1", 12, 0, _f(0.6, 7), _f(0.0, 7), _f(0.2, 7), _f(0.2, 10), _f(0.05, 10), 3.0,
         True, 0),
        (DS, "r1", 10, 1, _f(0.5, 7), _f(0.1, 7), _f(0.1, 7), _f(0.2, 10), _f(0.05, 10), 2.0,
         True, 1),
        (DS, "r1", 11, 2, _f(0.4, 7), _f(0.2, 7), _f(0.0, 7), _f(0.2, 10), _f(0.05, 10), 1.0,
         True, 2),
        _cand("r1", 11, 9, 0.05, 0.5, -2.0), _cand("r1", 10, 4, 0.25, -0.2, 0.5),
    ], CAND_COLS)
    return users, items, requests, exposures, feedback, candidates


@pytest.fixture(scope="module")
def built(frames):
    from core.reward import RewardConfig
    from jobs.build_enhanced_state import build_enhanced_state
    from pipeline.config import DataConfig

    reward = RewardConfig(w_watch=1.0, w_valid=1.0, w_like=2.0, w_share=3.0, w_collect=4.0)
    es, us = build_enhanced_state(*frames, reward,
                                  DataConfig(eval_fraction=0.0, candidates=K))
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
    candidates = spark.createDataFrame([], CAND_COLS)
    es, us = build_enhanced_state(users, items, requests, exposures, feedback, candidates,
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


def test_candidates_in_cand_index_slots_padded_and_masked(built):
    """Slot k holds cand_index k, built like the exposed pair states (the first l slots
    equal pair_state where the exposures are); a missing index is a zero slot with mask 0,
    an index outside the K slots is left out, a request without candidate rows has mask 0
    everywhere; without data.next_candidates the next_cand_* columns are NULL."""
    es = built[0]
    r0, r1, r2 = es["r0"], es["r1"], es["r2"]
    for r in (r0, r1, r2):
        assert len(r["cand_state"]) == K * D and len(r["cand_center"]) == K * A
        assert r["next_cand_state"] is None and r["next_cand_center"] is None
        assert r["next_cand_mask"] is None
    assert r0["cand_mask"] == [1, 1, 1, 0, 0, 0]
    assert r1["cand_mask"] == [1, 1, 1, 0, 1, 0]
    assert r2["cand_mask"] == [0] * K
    assert not any(r2["cand_state"]) and not any(r2["cand_center"])
    for r in (r0, r1):
        cs = np.array(r["cand_state"]).reshape(K, D)
        ps = np.array(r["pair_state"]).reshape(L, D)
        n = r["n_items"]
        assert np.array_equal(cs[:n], ps[:n])
        # every candidate of the request shares its user block
        present = np.array(r["cand_mask"]) > 0
        assert np.array_equal(cs[present, :S.D_USER],
                              np.repeat(ps[:1, :S.D_USER], present.sum(), 0))
        assert not cs[~present].any()
    cs0 = np.array(r0["cand_state"]).reshape(K, D)
    # slot 2 of r0: item 12 (category 7), preds 0.1, ranks 0.05, z -0.1
    assert np.allclose(cs0[2, S.OFFSET_ITEM:S.OFFSET_PRED],
                       [-1.0] * 8 + [math.log1p(15.0) / 5, 0.9] + [0] * 7 + [1], atol=1e-6)
    assert np.allclose(cs0[2, S.OFFSET_PRED:], [0.1] * 7 + [0.05] * 7 + [-0.1] * 7, atol=1e-6)
    assert np.allclose(np.array(r0["cand_center"]).reshape(K, A)[:3, 0], [0.0, 0.0, 0.3])
    cs1 = np.array(r1["cand_state"]).reshape(K, D)
    assert np.allclose(cs1[4, S.OFFSET_PRED:S.OFFSET_PRED + 7], 0.25)
    assert not cs1[3].any() and not cs1[5].any()
    assert np.allclose(np.array(r1["cand_center"]).reshape(K, A)[4], -0.2)


def test_next_candidates_switch(frames, spark, cfg):
    """With data.next_candidates the next request's candidate arrays are linked like its
    pairs (zeros when done), and both variants pass the table's constraints."""
    from core.reward import RewardConfig
    from jobs.build_enhanced_state import build_enhanced_state
    from pipeline.config import DataConfig
    from store.tables import write_partition

    es, _ = build_enhanced_state(*frames, RewardConfig(), DataConfig(
        eval_fraction=0.0, candidates=cfg.data.candidates, next_candidates=True))
    rows = {r["request_id"]: r.asDict() for r in es.collect()}
    k = cfg.data.candidates
    r0, r1, r2 = rows["r0"], rows["r1"], rows["r2"]
    assert r0["next_cand_state"] == r1["cand_state"]
    assert r0["next_cand_center"] == r1["cand_center"]
    assert r0["next_cand_mask"] == r1["cand_mask"] == [1, 1, 1, 0, 1] + [0] * (k - 6) + [1]
    for r in (r1, r2):  # done
        assert r["next_cand_state"] == [0.0] * (k * D)
        assert r["next_cand_center"] == [0.0] * (k * A)
        assert r["next_cand_mask"] == [0.0] * k
    db = cfg.storage.database
    assert write_partition(es, db, "enhanced_state", DS) == 3
    off, _ = build_enhanced_state(*frames, RewardConfig(),
                                  DataConfig(eval_fraction=0.0, candidates=k))
    assert write_partition(off, db, "enhanced_state", DS) == 3
    got = spark.table(f"{db}.enhanced_state").where(f"ds = '{DS}'").collect()
    assert all(r["next_cand_mask"] is None and len(r["cand_mask"]) == k for r in got)
