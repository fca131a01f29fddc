"""The Spark job rebuilds, from the logged columns, exactly the states the simulator served:
of the exposed pairs, of the users, and of every logged candidate."""

from __future__ import annotations

import numpy as np
import pytest

from core import schema as S

pytestmark = pytest.mark.spark
DS = "2033-03-03"


def test_spark_states_equal_served_states(spark, cfg):
    from core.policy import FixedWeightsPolicy
    from jobs.build_enhanced_state import build_enhanced_state
    from jobs.simulate import to_spark
    from sim import World, simulate_day
    from store.tables import BRONZE

    world = World.build(cfg.sim)
    logs = simulate_day(world, FixedWeightsPolicy(), DS, explore=True, return_states=True)
    db = cfg.storage.database
    frames = {t: to_spark(spark, getattr(logs, t), db, t) for t in BRONZE}
    es, us = build_enhanced_state(*(frames[t] for t in BRONZE), cfg.reward, cfg.data)
    built = {r["request_id"]: r for r in es.select(
        "request_id", "n_items", "pair_state", "cand_state", "cand_center", "cand_mask").collect()}
    served = logs.pair_states
    assert len(built) == logs.raw_requests.shape[0]
    worst = 0.0
    for rid, pos, state in zip(served["request_id"], served["position"], served["pair_state"]):
        row = built[rid]
        got = np.asarray(row["pair_state"], dtype=np.float32).reshape(S.LIST_LEN, -1)[pos]
        worst = max(worst, float(np.max(np.abs(got - np.asarray(state, np.float32)))))
    assert worst < 1e-5, worst
    ubuilt = {r["request_id"]: r["user_state"] for r in us.select("request_id", "user_state")
              .collect()}
    uworst = max(float(np.max(np.abs(np.asarray(ubuilt[rid], np.float32) - np.asarray(st))))
                 for rid, st in zip(logs.user_states["request_id"], logs.user_states["user_state"]))
    assert uworst < 1e-5, uworst
    # the candidates: every logged one in its cand_index slot, equal to the served state
    k = cfg.data.candidates
    cand, cst = logs.raw_candidates, logs.cand_states
    assert cst is not None and len(cand) == len(cst) == k * len(built)
    cworst = 0.0
    for rid, idx, state in zip(cst["request_id"], cst["cand_index"], cst["pair_state"]):
        got = np.asarray(built[rid]["cand_state"], np.float32).reshape(k, -1)[idx]
        cworst = max(cworst, float(np.max(np.abs(got - np.asarray(state, np.float32)))))
    assert cworst < 1e-5, cworst
    for rid, idx, mu in zip(cand["request_id"], cand["cand_index"], cand["mu_bp"]):
        got = np.asarray(built[rid]["cand_center"], np.float32).reshape(k, -1)[idx]
        assert np.array_equal(got, np.asarray(mu, np.float32))
    for row in built.values():  # all K present; the first l slots are the exposed pairs
        assert row["cand_mask"] == [1.0] * k
        n = row["n_items"]
        assert row["cand_state"][:n * S.PAIR_STATE_DIM] == row["pair_state"][:n * S.PAIR_STATE_DIM]
