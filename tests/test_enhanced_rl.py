"""The EnhancedRL update: metrics, delayed actor, soft targets, learning, save/load, export."""

from __future__ import annotations

import copy

import pytest
import torch

from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.export import check_parity, export_actor, file_sha256, load_actor
from mtf import schema as S

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM


def tiny_cfg(**kw) -> EnhancedRLConfig:
    base = dict(critics_per_set=3, critic_hidden=(32, 32), actor_hidden=(32, 16),
                user_tower_hidden=8, batch_size=16, seed=0)
    base.update(kw)
    return EnhancedRLConfig(**base)


def make_batch(b: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, L)
    mask[0, 3:] = 0
    action = torch.rand(b, L, A, generator=g) * 0.3 - 0.15
    state = torch.randn(b, L, D, generator=g)
    # reward depends on the state and action, so there is something to learn
    r = torch.stack([state[..., 0].abs(), (action[..., 0] > 0).float()], 1)  # [B, 2, L]
    return {"pair_state": state, "action": action, "box_center": torch.zeros(b, L, A),
            "mask": mask, "reward": r * mask.unsqueeze(1),
            "next_pair_state": torch.randn(b, L, D, generator=g),
            "next_box_center": torch.zeros(b, L, A), "next_mask": mask.clone(),
            "done": (torch.arange(b) % 4 == 0).float()}


def test_update_returns_namespaced_finite_metrics_and_delays_actor():
    learner = EnhancedRL(tiny_cfg(actor_delay=2))
    batch = make_batch()
    actor_before = copy.deepcopy(learner.actor.state_dict())
    m1 = learner.update(batch)  # step 1 of 2: critic only
    assert "losses/critic" in m1 and "losses/actor" not in m1
    assert all(torch.equal(actor_before[k], v) for k, v in learner.actor.state_dict().items())
    m2 = learner.update(batch)
    assert {"losses/actor", "losses/box_penalty", "q/mean"} <= set(m2)
    assert all(torch.isfinite(torch.tensor(v)) for v in m2.values())
    assert any(not torch.equal(actor_before[k], v)
               for k, v in learner.actor.state_dict().items())


def test_soft_update_moves_targets_by_tau():
    learner = EnhancedRL(tiny_cfg(tau=0.25))
    tgt_before = copy.deepcopy(learner.critic_target.state_dict())
    learner.update(make_batch())
    for k, new in learner.critic_target.state_dict().items():
        expected = 0.75 * tgt_before[k] + 0.25 * learner.critic.state_dict()[k]
        assert torch.allclose(new, expected, atol=1e-6), k


def test_critic_learns_a_tiny_dataset():
    learner = EnhancedRL(tiny_cfg(critic_lr=3e-3, actor_lr=1e-3, gamma=0.5))
    batch = make_batch(32)
    first = learner.update(batch)["losses/critic"]
    for _ in range(300):
        last = learner.update(batch)["losses/critic"]
    assert last < 0.2 * first, (first, last)


@pytest.mark.parametrize("mode", [dict(td_mode="pair"), dict(ensemble_target="redq_min")])
def test_ablation_switches_run(mode):
    learner = EnhancedRL(tiny_cfg(**mode))
    for _ in range(3):
        m = learner.update(make_batch())
    assert torch.isfinite(torch.tensor(m["losses/critic"]))


def test_seeded_runs_are_identical_and_state_dict_round_trips():
    a, b = EnhancedRL(tiny_cfg()), EnhancedRL(tiny_cfg())
    for i in range(4):
        ma, mb = a.update(make_batch(seed=i)), b.update(make_batch(seed=i))
        assert ma == mb
    c = EnhancedRL(tiny_cfg(seed=123))
    c.load_state_dict(a.state_dict())
    x = make_batch(seed=9)
    assert torch.equal(torch.as_tensor(a.act(x["pair_state"])),
                       torch.as_tensor(c.act(x["pair_state"])))
    assert a.update(x) == c.update(x)


def test_export_parity_and_checksum(tmp_path):
    learner = EnhancedRL(tiny_cfg())
    learner.update(make_batch())
    sha = export_actor(learner.actor, tmp_path / "actor.pt")
    assert sha == file_sha256(tmp_path / "actor.pt") and len(sha) == 64
    scripted = load_actor(tmp_path / "actor.pt", sha)
    assert check_parity(learner.actor, scripted, torch.randn(64, D)) <= 1e-5
    with pytest.raises(ValueError, match="checksum"):
        load_actor(tmp_path / "actor.pt", "0" * 64)
