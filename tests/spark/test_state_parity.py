"""The Spark job rebuilds, from the logged columns, exactly the states the simulator served."""

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
    es, us = build_enhanced_state(frames["raw_users"], frames["raw_items"],
                                  frames["raw_requests"], frames["raw_exposures"],
                                  frames["raw_feedback"], cfg.reward, cfg.data)
    built = {r["request_id"]: r for r in es.select("request_id", "n_items", "pair_state").collect()}
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
