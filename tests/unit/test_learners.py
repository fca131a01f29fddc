"""Every learner of model/learners fits a tiny planted problem in a few seconds, and the
in-memory training data built from a simulated day keep the batch contract."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from core.reward import RewardConfig
from model.learners import FitContext, TrainData, build_learner
from model.learners.data import DU, A, D, L
from sim.config import SimConfig
from sim.simulator import evaluate_policy

H = 0.15
SIGNS = np.where(np.arange(A) % 2 == 0, 1.0, -1.0)
A_STAR = 0.3 * SIGNS
"""Planted optimum, OUTSIDE the logged box [-h, h]^A around the centre 0."""
BEST_IN_BOX = H * SIGNS
"""What a box-constrained offline learner should find: the box corner nearest A_STAR."""


def planted_data(n: int = 512, seed: int = 0) -> TrainData:
    """One-request sessions (done), actions uniform in the box [-h, h]^A around centre 0,
    pair reward 1 - 2 ||a - a*||^2 split equally over both critic sets."""
    rng = np.random.default_rng(seed)
    act = rng.uniform(-H, H, (n, A)).astype(np.float32)
    r = 1.0 - 2.0 * ((act - A_STAR) ** 2).sum(-1)  # [n]
    reward = np.broadcast_to((r / 2)[:, None, None], (n, 2, L)).astype(np.float32)
    pairs = np.broadcast_to(act[:, None, :], (n, L, A)).astype(np.float32)
    return TrainData(
        session=np.arange(n), user_id=np.arange(n), request_index=np.zeros(n, np.int64),
        user_state=rng.normal(0, 0.5, (n, DU)).astype(np.float32),
        pair_state=rng.normal(0, 0.5, (n, L, D)).astype(np.float32),
        action=pairs, box_center=np.zeros((n, L, A), np.float32), req_action=act,
        req_center=np.zeros((n, A), np.float32), mask=np.ones((n, L), np.float32),
        reward=reward, valid=np.ones((n, L), np.float32), next_idx=np.full(n, -1),
        half_width=H)


CTX = FitContext(ground_truth=functools.partial(
    evaluate_policy, SimConfig(n_users=50, n_items=200, n_candidates=10)))
SMALL_RL = {"steps": 300, "batch_size": 64, "critics_per_set": 2, "critic_hidden": [32, 32],
            "actor_hidden": [32, 32], "user_tower_hidden": 16, "actor_lr": 3e-3,
            "critic_lr": 3e-3, "tau": 0.05, "half_width": H, "gamma": 0.9, "seed": 0}
"""actor_lr 3e-3 (not 1e-2): at 1e-2 the pair actor oscillates around the corner and where
it stops is chaotic (distance 0.19-0.41 x start over seeds, and up to 0.15 x start apart at
one seed between BLAS / SIMD code paths), so the 0.35 bound was a coin flip; at 3e-3 it
settles (measured below)."""
SMALL_BCQ = {"steps": 200, "batch_size": 64, "hidden": [32, 32], "actor_lr": 1e-3,
             "critic_lr": 3e-3, "vae_lr": 3e-3, "kl_weight": 2.0, "tau": 0.2, "target_every": 2,
             "seed": 0}
"""actor_lr 1e-3: at 1e-2 the perturbation net saturates its tanh at once, some seeds the
wrong way round on a few dims (distance up to 1.1 x start); kl_weight 2: the VAE loss then
falls by a factor measured 0.26-0.38 (0.39-0.58 with 0.5; bound 0.7)."""


def _actions(policy, data: TrainData) -> np.ndarray:
    return np.asarray(policy.act(data.user_state[:64], data.pair_state[:64])).reshape(-1, A)


def _drop(curve: list[float], k: int = 20) -> float:
    return float(np.mean(curve[-k:]) / np.mean(curve[:k]))


@pytest.fixture
def one_thread():
    """Tiny networks: one torch thread (faster on a busy machine), restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name,params,n_rows", [
    ("enhanced_rl", SMALL_RL, 512),
    ("enhanced_rl", {**SMALL_RL, "ensemble_target": "redq_min", "td_mode": "pair"}, 512),
    ("unified_rl", SMALL_RL, 512),
    ("batchrl_mtf", SMALL_BCQ, 4096),
])
def test_rl_learners_move_to_planted_optimum(name, params, n_rows, one_thread):
    """Every bound holds with a wide margin BY DESIGN, not at this one seed: measured over
    data seeds 0-9 x learner seeds 0-4 (1 thread), and data seeds 0-5 x learner seeds 0-2
    with 2 threads and with AVX2 / no-SIMD kernels (ATEN_CPU_CAPABILITY=avx2 / default):
    distance / start (bound 0.35): enhanced_rl 0.025-0.139, enhanced_rl redq_min + pair TD
    0.035-0.151, unified_rl 0.018-0.076, batchrl_mtf 0.025-0.070 (this seed, (0, 0): 0.038,
    0.054-0.114, 0.021, 0.062); max |a| (bound H + 0.1 = 0.25): enhanced / unified
    0.150-0.167, batchrl_mtf 0.169-0.190 (on 512 rows its VAE decoder fits the noise states
    and served actions spread to 0.29, hence 4096); critic loss drop (bound 0.3) <= 0.015;
    batchrl VAE loss drop (bound 0.7) 0.26-0.38."""
    data = planted_data(n=n_rows, seed=0)
    fitted = build_learner(name, params).fit(data, CTX)
    assert fitted.policy.level == ("pair" if name == "enhanced_rl" else "user")
    acts = _actions(fitted.policy, data)
    start = float(np.linalg.norm(BEST_IN_BOX))  # the logged centre is 0
    got = float(np.linalg.norm(acts.mean(0) - BEST_IN_BOX))
    assert got < 0.35 * start, (name, got, start)
    assert np.abs(acts).max() < H + 0.1, name  # the box / support constraint holds
    assert _drop(fitted.history["losses/critic"]) < 0.3, name
    if name == "batchrl_mtf":
        assert _drop(fitted.history["losses/vae"]) < 0.7


def test_fixed_learner_serves_the_default():
    from core.fusion import default_action_norm

    data = planted_data(8)
    acts = build_learner("fixed").fit(data, CTX).policy.act(data.user_state, data.pair_state)
    np.testing.assert_allclose(acts, np.broadcast_to(default_action_norm(), (8, A)), atol=1e-6)


def test_cem_finds_a_planted_optimum():
    target = np.clip(A_STAR * 2, -1, 1)  # far from the default weights
    learner = build_learner("cem", {"iterations": 25, "population": 30, "init_std": 0.5})
    learner.score_fn = lambda a: -float(((a - target) ** 2).sum())
    from core.fusion import default_action_norm

    fitted = learner.fit(planted_data(8), CTX)
    got = fitted.policy.act(np.zeros((1, DU)), np.zeros((1, 1, D)))[0]
    assert np.linalg.norm(got - target) < 0.2 * np.linalg.norm(default_action_norm() - target)
    assert fitted.history["cem/best"][-1] > fitted.history["cem/best"][0]


def test_cem_refuses_an_unknown_objective():
    with pytest.raises(ValueError):
        build_learner("cem", {"objective": "clicks"})
    with pytest.raises(KeyError):
        build_learner("unified_rl", {"no_such_field": 1})


def test_train_data_from_a_simulated_day():
    from core.policy import FixedWeightsPolicy
    from model.enhanced_rl import check_batch
    from sim import World, simulate_day

    sim = SimConfig(seed=5, n_users=60, n_items=200, n_candidates=10)
    logs = simulate_day(World.build(sim), FixedWeightsPolicy(), "2030-01-01",
                        return_states=True)
    rw = RewardConfig()
    data = TrainData.from_logs(logs, rw)
    both = TrainData.concat([data, data])
    assert len(both) == 2 * len(data) and both.session.max() > data.session.max()
    n = len(data)
    fb = logs.raw_feedback
    np.testing.assert_allclose(data.reward[:, 0].reshape(-1),
                               fb["watch_time_s"].to_numpy() / 60.0, rtol=1e-5)
    # next request = same session, index + 1; the last request of a session is done
    has = data.next_idx >= 0
    assert (data.session[data.next_idx[has]] == data.session[has]).all()
    assert (data.request_index[data.next_idx[has]] == data.request_index[has] + 1).all()
    assert (data.done[np.r_[data.session[1:] != data.session[:-1], True]] == 1).all()
    # logged actions lie in their boxes
    assert (np.abs(data.action - data.box_center) <= H + 1e-5).all()
    idx = np.arange(min(n, 16))
    check_batch(data.pair_batch(idx), 2)
    g = data.session_returns(0.9)
    assert g.shape == data.first_requests().shape and (g >= 0).all()
    # sessions of one request: the return is the list reward
    first = data.first_requests()
    one = first[data.next_idx[first] < 0]
    k = np.searchsorted(first, one)
    np.testing.assert_allclose(g[k], data.reward[one].sum((1, 2)), rtol=1e-5)
