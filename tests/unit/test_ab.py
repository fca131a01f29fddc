"""The online A/B: stable arms by user hash, several policies serving one simulated day,
and the lift against the holdout with its CI (hand-computed values)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core import schema as S
from core.ab import (
    Lift,
    assign_arms,
    is_regression,
    lift,
    lift_text,
    split_shares,
    user_bucket,
)
from core.policy import CallablePolicy, FixedWeightsPolicy
from sim import Arms, SimConfig, World, simulate_day

CFG = SimConfig(seed=5, n_users=150, n_items=300, n_candidates=20, logged_candidates=10)
DS = "2026-04-02"


def test_shares_are_checked_and_current_gets_the_rest():
    assert split_shares(0.0) == (("current", 1.0),)
    assert split_shares(0.2, 0.05) == (("current", 0.75), ("holdout", 0.2), ("canary", 0.05))
    for bad in ((-0.1, 0.0), (1.0, 0.0), (0.6, 0.4), (0.2, -0.01)):
        with pytest.raises(ValueError, match="shares"):
            split_shares(*bad)


def test_arms_are_stable_uniform_and_salted():
    ids = np.arange(100_000)
    shares = split_shares(0.2, 0.1)
    arm = assign_arms(ids, shares, "exp-a")
    share = np.bincount(arm, minlength=3) / len(ids)
    assert np.allclose(share, [0.7, 0.2, 0.1], atol=0.006)
    # a user's arm depends on the user alone: any subset, any order, any day
    sub = ids[::-7]
    assert np.array_equal(assign_arms(sub, shares, "exp-a"), arm[sub])
    # another salt is another split, independent of the first
    other = assign_arms(ids, shares, "exp-b")
    both_holdout = np.mean((arm == 1) & (other == 1))
    assert 0.03 < both_holdout < 0.05  # about 0.2 * 0.2
    b = user_bucket(ids, "exp-a")
    assert 0 <= b.min() and b.max() < 1
    # growing the holdout only moves users from current into it (cuts are nested)
    bigger = assign_arms(ids, split_shares(0.3, 0.1), "exp-a")
    moved = (arm != bigger)
    assert set(zip(arm[moved].tolist(), bigger[moved].tolist(), strict=True)) <= {(0, 1), (1, 2)}


def test_lift_and_its_ci_by_hand():
    # a = 2.2 (se 0.05), holdout b = 2.0 (se 0.04): r = 1.1,
    # var = (0.05/2)^2 + (2.2*0.04/4)^2 = 0.000625 + 0.000484 = 0.001109
    lf = lift(2.2, 0.05, 2.0, 0.04)
    half = 1.959963984540054 * math.sqrt(0.001109)
    assert lf is not None
    assert lf.value == pytest.approx(0.1)
    assert (lf.low, lf.high) == pytest.approx((0.1 - half, 0.1 + half))
    assert lift(1.0, 0.1, 0.0, 0.1) is None and lift(float("nan"), 0.1, 1.0, 0.1) is None


def test_lift_text_is_signed_percentages_with_the_ci():
    row = {"uvc_lift": -0.16374, "uvc_lift_low": -0.29112, "uvc_lift_high": -0.03626}
    assert lift_text(row, "uvc") == "-16.37% [-29.11%, -3.63%]"
    assert lift_text({"udt_lift": 0.004, "udt_lift_low": -0.153, "udt_lift_high": 0.1609},
                     "udt", digits=1) == "+0.4% [-15.3%, +16.1%]"
    assert lift_text({"uvc_lift": float("nan")}, "uvc", missing="n/a") == "n/a [n/a, n/a]"


def test_regression_needs_the_threshold_and_the_whole_ci_below_zero():
    assert is_regression(Lift(-0.05, -0.08, -0.02), 0.02)
    assert not is_regression(Lift(-0.05, -0.10, 0.01), 0.02)  # CI reaches 0: noise
    assert not is_regression(Lift(-0.01, -0.015, -0.005), 0.02)  # significant, but small
    assert not is_regression(None, 0.0)


@pytest.fixture(scope="module")
def world():
    return World.build(CFG)


def _tilt(u: np.ndarray, p: np.ndarray) -> np.ndarray:
    # pair level: depends on the item block, so boxes differ between items of one request
    return np.tanh(p[..., S.OFFSET_ITEM:S.OFFSET_ITEM + 10] - 0.3)


def test_each_arm_is_served_as_if_it_served_everybody(world):
    """Common random numbers: an arm's requests in an A/B day are exactly the requests its
    policy would have served those users on a day of its own."""
    pair = CallablePolicy(_tilt, "pair", "tilt")
    fixed = FixedWeightsPolicy()
    of_user = assign_arms(world.user_id, split_shares(0.4), "t")
    ab = simulate_day(world, Arms.split(world, [("current", pair), ("holdout", fixed)],
                                        of_user), DS)
    alone = {"current": simulate_day(world, pair, DS), "holdout": simulate_day(world, fixed, DS)}
    req = ab.raw_requests
    assert set(req.groupby("arm")["policy_version"].unique().map(tuple)) == {
        ("tilt",), ("fixed-v0",)}
    assert req.groupby("user_id")["arm"].nunique().max() == 1
    expect = dict(zip(world.user_id.tolist(), np.array(["current", "holdout"])[of_user],
                      strict=True))
    assert (req["user_id"].map(expect) == req["arm"]).all()
    for arm, solo in alone.items():
        ids = set(req.loc[req["arm"] == arm, "request_id"])
        assert ids  # both arms have traffic
        for table in ("raw_requests", "raw_exposures", "raw_feedback", "raw_candidates"):
            got = getattr(ab, table)
            want = getattr(solo, table)
            got = got[got["request_id"].isin(ids)].drop(columns=["arm", "policy_version"],
                                                         errors="ignore")
            want = want[want["request_id"].isin(ids)].drop(columns=["arm", "policy_version"],
                                                           errors="ignore")
            for c in ("action", "mu_bp", "noise"):  # float32 vectors: compare numerically
                if c in got:
                    assert np.allclose(np.stack(got.pop(c).to_numpy()),
                                       np.stack(want.pop(c).to_numpy()), atol=1e-6)
            pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                          want.reset_index(drop=True))


def test_arms_check_their_policies(world):
    with pytest.raises(ValueError, match="one policy each"):
        Arms(("current", "holdout"), (FixedWeightsPolicy(),), np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        Arms.split(world, [("current", FixedWeightsPolicy())],
                   np.ones(len(world.user_id), dtype=np.int64))
    with pytest.raises(ValueError, match="entries"):
        Arms.split(world, [("current", FixedWeightsPolicy())], np.zeros(3, dtype=np.int64))
