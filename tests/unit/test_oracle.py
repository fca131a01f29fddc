"""The per-pair headroom ORACLES (sim/oracle.py) and the EnhancedRL action probe
(mtf/experiment/): they decode the right pairs, stay in the box, and the pair-level
oracle with the truth beats what it is centred on."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core import schema as S
from core.fusion import log_fused_score
from core.policy import CallablePolicy, FixedWeightsPolicy
from mtf.experiment import PairActionProbe
from sim import World
from sim.config import SimConfig
from sim.oracle import PairBoxOracle, StateDecoder, UserBoxOracle, box_extremes
from sim.simulator import evaluate_policy, evaluation_world, simulate_day

SIM = SimConfig(n_users=60, n_items=400, n_candidates=20, max_requests=6)


def test_decoder_finds_the_logged_users_and_items():
    world = World.build(SIM)
    logs = simulate_day(world, FixedWeightsPolicy(), "2030-01-01", return_states=True)
    dec = StateDecoder(world)
    pair = np.stack(logs.pair_states["pair_state"].to_numpy())[:, None, :]
    user = np.stack(logs.user_states["user_state"].to_numpy())
    assert np.array_equal(world.item_id[dec.items(pair)[:, 0]],
                          logs.raw_exposures["item_id"].to_numpy())
    assert np.array_equal(world.user_id[dec.users(user)], logs.raw_requests["user_id"].to_numpy())
    network, device, hour = dec.context(user)
    req = logs.raw_requests
    for got, col in ((network, "network"), (device, "device"), (hour, "hour")):
        assert np.array_equal(got, req[col].to_numpy())
    other = StateDecoder(evaluation_world(SIM, 101))
    with pytest.raises(ValueError, match="not in this population"):
        other.users(user)


def test_box_extremes_bound_every_action_of_the_box():
    rng = np.random.default_rng(0)
    preds = rng.uniform(0.01, 0.99, (64, S.NUM_HEADS))
    centre = rng.uniform(-0.9, 0.9, (64, S.ACTION_DIM))
    up, down = box_extremes(preds, centre, 0.15)
    for a in (up, down):
        assert np.all(a >= np.clip(centre - 0.15, -1, 1) - 1e-9)
        assert np.all(a <= np.clip(centre + 0.15, -1, 1) + 1e-9)
    inside = centre + rng.uniform(-0.15, 0.15, (200, *centre.shape))
    s = log_fused_score(preds, inside)  # [200, 64]
    assert np.all(log_fused_score(preds, up) >= s.max(0) - 1e-9)
    assert np.all(log_fused_score(preds, down) <= s.min(0) + 1e-9)


def test_pair_oracle_with_the_truth_beats_its_centre():
    """miscalibration 2: with SIM's 1 the oracle's gain is itself only ~7% (pair / centre
    UVC 1.035-1.110 over seeds 101-108, 1.059-1.076 with 1500 users), at the 5% bound; with
    the MTL predictions twice as biased the centre ranks worse and the gain is 1.17-1.25
    over seeds 101-110 (this seed 1.22)."""
    sim = dataclasses.replace(SIM, miscalibration=2.0)
    seed, n = 101, 150
    dec = StateDecoder(evaluation_world(sim, seed, n))
    base = FixedWeightsPolicy()
    r0 = evaluate_policy(sim, base, seed=seed, n_users=n)["uvc"]
    pair = evaluate_policy(sim, PairBoxOracle(base, dec, 2.0, "truth", beta=4.0), seed=seed,
                           n_users=n)["uvc"]
    assert pair > 1.05 * r0


def test_user_oracle_picks_the_best_action_of_the_box():
    """400 users and 32 draws: the share of first requests the oracle strictly improves is
    0.30-0.36 over seeds 101-108 (this seed 0.34; bound 0.2); with 40 users and 8 draws it
    was 0.10-0.35 (this seed 0.29)."""
    seed, n = 101, 400
    dec = StateDecoder(evaluation_world(SIM, seed, n))
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    default = FixedWeightsPolicy()

    def record(u: np.ndarray, p: np.ndarray) -> np.ndarray:
        seen.append((u, p))
        return default.act(u, p)

    evaluate_policy(SIM, CallablePolicy(record, "user", "rec"), seed=seed, n_users=n)
    user, pair = seen[0]  # the first requests, all N candidates
    oracle = UserBoxOracle(default, dec, 0.15, "truth", beta=4.0, n_draws=32)
    got, centre = oracle.act(user, pair).astype(np.float64), default.act(user, pair)
    assert np.all(np.abs(got - centre) <= 0.15 + 1e-6)
    util = dec.utility(user, pair, "truth", 4.0)
    preds = pair[..., S.PAIR_PRED]

    def value(a: np.ndarray) -> np.ndarray:
        top = np.argsort(-log_fused_score(preds, a[:, None, :]), 1, kind="stable")
        return np.take_along_axis(util, top[:, :S.LIST_LEN], 1).sum(1)

    v_got, v_centre = value(got), value(centre)
    assert np.all(v_got >= v_centre - 1e-6) and np.mean(v_got > v_centre + 1e-6) > 0.2
    for off in oracle.offsets:
        assert np.all(v_got >= value(np.clip(centre + off, -1, 1)) - 1e-6)


def test_probe_sees_a_user_level_policy_inside_a_pair_policy():
    rng = np.random.default_rng(1)
    user = rng.normal(size=(8, S.USER_STATE_DIM)).astype(np.float32)
    pair = rng.uniform(0.05, 0.95, (8, 20, S.PAIR_STATE_DIM)).astype(np.float32)
    same = PairActionProbe(CallablePolicy(
        lambda u, p: np.zeros((*p.shape[:2], S.ACTION_DIM)), "pair", "same"))
    same.act(user, pair)
    assert same.spread == [0.0] and same.changed == [0.0]
    varied = PairActionProbe(CallablePolicy(
        lambda u, p: rng.uniform(-1, 1, (*p.shape[:2], S.ACTION_DIM)), "pair", "varied"))
    varied.act(user, pair)
    assert varied.spread[0] > 0.3 and varied.changed[0] > 0.1
