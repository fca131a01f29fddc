"""The EnhancedRL update: metrics, delayed actor, soft targets, masking, learning,
determinism, save/load and export."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch

from core import schema as S
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.export import check_parity, export_actor, file_sha256, load_actor
from model.losses import box_overshoot, list_td_target, target_multiplier

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one thread is faster and steadier on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cfg(**kw) -> EnhancedRLConfig:
    base = dict(critics_per_set=3, critic_hidden=(32, 32), actor_hidden=(32, 16),
                user_tower_hidden=8, batch_size=16, seed=0)
    base.update(kw)
    return EnhancedRLConfig(**base)


def make_batch(b: int = 16, seed: int = 0) -> dict[str, torch.Tensor]:
    """A batch of the loader's contract: short lists, ended sessions, padding = 0."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, L)
    mask[0, 3:] = 0  # a list of 3
    mask[1, 1:] = 0  # a list of 1
    done = (torch.arange(b) % 4 == 0).float()
    next_mask = torch.ones(b, L)
    next_mask[done > 0] = 0  # session ended: no next list
    next_mask[2, 2:] = 0  # a next list of 2
    center = torch.rand(b, L, A, generator=g) * 1.4 - 0.7
    action = center + torch.rand(b, L, A, generator=g) * 0.3 - 0.15
    state = torch.randn(b, L, D, generator=g)
    # reward depends on the state and action, so there is something to learn
    r = torch.stack([state[..., 0].abs(), (action[..., 0] > center[..., 0]).float()], 1)
    return {"pair_state": state * mask[..., None], "action": action * mask[..., None],
            "box_center": center * mask[..., None], "mask": mask,
            "reward": r * mask.unsqueeze(1),
            "next_pair_state": torch.randn(b, L, D, generator=g) * next_mask[..., None],
            "next_box_center": (torch.rand(b, L, A, generator=g) * 1.4 - 0.7)
            * next_mask[..., None],
            "next_mask": next_mask, "done": done}


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_update_returns_namespaced_finite_metrics_and_delays_actor():
    learner = EnhancedRL(tiny_cfg(actor_delay=2))
    batch = make_batch()
    actor_before, critic_before = params(learner.actor), params(learner.critic)
    m1 = learner.update(batch)  # call 1: critic only
    assert "losses/critic" in m1 and "losses/actor" not in m1
    assert all(torch.equal(actor_before[k], v) for k, v in learner.actor.state_dict().items())
    assert any(not torch.equal(critic_before[k], v)
               for k, v in learner.critic.state_dict().items())
    m2 = learner.update(batch)  # call 2: critic + actor
    expected = {"losses/critic", "losses/actor", "losses/box_penalty", "losses/actor_q",
                "losses/ensemble_std", "q/mean", "q/std", "q/target_mean", "charts/phi_mean",
                "charts/in_box_frac"}
    assert expected <= set(m2)
    assert all(k.split("/")[0] in ("losses", "q", "charts") for k in m2)
    assert all(isinstance(v, float) and math.isfinite(v) for v in m2.values())
    assert any(not torch.equal(actor_before[k], v)
               for k, v in learner.actor.state_dict().items())
    actor_after_2 = params(learner.actor)
    assert "losses/actor" not in learner.update(batch)  # call 3: critic only again
    assert all(torch.equal(actor_after_2[k], v) for k, v in learner.actor.state_dict().items())
    assert learner.step == 3
    assert all(p.requires_grad for p in learner.critic.parameters())  # unfrozen again


def test_actor_delay_three():
    learner = EnhancedRL(tiny_cfg(actor_delay=3))
    batch = make_batch()
    stepped = ["losses/actor" in learner.update(batch) for _ in range(6)]
    assert stepped == [False, False, True, False, False, True]


def test_soft_update_moves_both_targets_by_tau():
    learner = EnhancedRL(tiny_cfg(tau=0.25, actor_delay=1))
    critic_tgt, actor_tgt = params(learner.critic_target), params(learner.actor_target)
    learner.update(make_batch())
    for tgt_before, tgt, src in ((critic_tgt, learner.critic_target, learner.critic),
                                 (actor_tgt, learner.actor_target, learner.actor)):
        for k, new in tgt.state_dict().items():
            expected = 0.75 * tgt_before[k] + 0.25 * src.state_dict()[k]
            assert not torch.equal(new, tgt_before[k]), k  # it moved ...
            torch.testing.assert_close(new, expected, atol=1e-7, rtol=1e-6)  # ... by tau
    assert all(not p.requires_grad for p in learner.critic_target.parameters())
    assert all(not p.requires_grad for p in learner.actor_target.parameters())


def test_target_uses_target_nets_phi_and_masks():
    """The critic's target equals list_td_target computed by hand from the TARGET actor and
    critics on the present next pairs, and nothing in an absent slot changes the update."""
    learner = EnhancedRL(tiny_cfg())
    batch = make_batch()
    learner.update(batch)
    learner.update(batch)
    # make the targets clearly differ from the online nets, so using the wrong ones shows
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in [*learner.actor_target.parameters(), *learner.critic_target.parameters()]:
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    with torch.no_grad():
        b = batch["mask"].shape[0]
        ns = batch["next_pair_state"].reshape(-1, D)
        na = learner.actor_target(ns)
        # boxes around the target actor's actions, every other one shifted by 0.2 on dim 0
        # (overshoot 0.05 -> phi = e^-0.5), so that the bootstrap term is far from zero
        shift = torch.zeros_like(na)
        shift[::2, 0] = 0.2
        batch["next_box_center"] = (na + shift).view(b, L, A) * batch["next_mask"][..., None]
        nq = learner.critic_target(ns, na).view(2, 3, b, L)
        phi = target_multiplier(na, batch["next_box_center"].reshape(-1, A), 0.15, 10.0)
        y = list_td_target(batch["reward"], batch["mask"], nq, phi.view(b, L),
                           batch["next_mask"], batch["done"], 0.9)
        got, _ = learner._critic_target(batch, b, L)
    assert 0.55 < float(phi.view(b, L)[batch["next_mask"] > 0].min()) < 0.65
    torch.testing.assert_close(got, y, atol=1e-5, rtol=1e-5)
    # garbage (NaN) in every absent slot must not change anything
    dirty = {k: v.clone() for k, v in batch.items()}
    for key, m in (("pair_state", "mask"), ("action", "mask"), ("box_center", "mask"),
                   ("next_pair_state", "next_mask"), ("next_box_center", "next_mask")):
        dirty[key][batch[m] == 0] = float("nan")
    dirty["reward"][(batch["mask"] == 0).unsqueeze(1).expand_as(batch["reward"])] = 1e6
    twin = EnhancedRL(tiny_cfg())
    twin.load_state_dict(learner.state_dict())
    assert learner.update(batch) == twin.update(dirty)


def test_all_sessions_ended_and_all_next_lists_empty():
    learner = EnhancedRL(tiny_cfg(actor_delay=1))
    batch = make_batch()
    batch["done"][:] = 1.0
    batch["next_mask"][:] = 0.0
    m = learner.update(batch)
    assert all(math.isfinite(v) for v in m.values())


def test_critic_learns_a_tiny_dataset():
    learner = EnhancedRL(tiny_cfg(critic_lr=3e-3, actor_lr=1e-3, gamma=0.5))
    batch = make_batch(32)
    losses = [learner.update(batch)["losses/critic"] for _ in range(200)]
    first, last = losses[0], float(np.mean(losses[-10:]))
    assert last < 0.1 * first, (first, last)


def test_actor_follows_the_reward_within_the_box():
    """Set 1 pays +-5 a_0 around a constant serving policy (box centre 0): the actor moves
    a_0 towards the paying edge of the box and stays inside it.

    grad_clip 1: a random initial actor can start outside the box, and the steep penalty's
    gradients then fill Adam's second moments, so without clipping the actor crept towards
    the edge for hundreds of steps on some seeds (mean a_0 towards the paying edge
    -0.004-0.135 over batch seeds 0-9 x learner seeds 0-4, bound 0.08). With it, over those
    seeds, 1-2 threads and no-SIMD kernels: 0.098-0.147 (this seed 0.127-0.139),
    in_box_frac 0.909-1.0 (bound 0.8), overshoot <= 0.006 (bound 0.02). Not more steps: an
    actor settled on the edge sits on the penalty's kink, where in_box_frac (strictly
    inside) fell to 0.3-0.5 on some seeds at 200-300 steps."""
    gaps = {}
    for sign in (1.0, -1.0):
        learner = EnhancedRL(tiny_cfg(critic_lr=3e-3, actor_lr=3e-3, actor_delay=1,
                                      gamma=0.0, grad_clip=1.0))
        batch = make_batch(32)
        present = batch["mask"] > 0
        # the serving policy was constant (box centre 0), actions uniform in the box
        batch["box_center"].zero_()
        batch["action"] = (batch["action"] - batch["action"].mean((0, 1))).clamp(-0.15, 0.15)
        batch["reward"][:, 0] = 0.0
        batch["reward"][:, 1] = sign * 5.0 * batch["action"][..., 0]
        batch["reward"] *= batch["mask"].unsqueeze(1)
        for _ in range(150):
            m = learner.update(batch)
        a = torch.as_tensor(learner.act(batch["pair_state"][present]))
        gaps[sign] = float(a[:, 0].mean())
        assert m["charts/in_box_frac"] > 0.8, m  # the box penalty holds it in its box
        assert float(box_overshoot(a, torch.zeros_like(a), 0.15).max()) < 0.02
    # pushed towards the paying edge of the box (+-0.15), not beyond
    assert gaps[1.0] > 0.08 and gaps[-1.0] < -0.08, gaps


@pytest.mark.parametrize("mode", [dict(td_mode="pair"), dict(ensemble_target="redq_min"),
                                  dict(grad_clip=1.0)])
def test_ablation_switches_run(mode):
    learner = EnhancedRL(tiny_cfg(**mode))
    for i in range(4):
        m = learner.update(make_batch(seed=i))
    assert all(math.isfinite(v) for v in m.values())
    if "grad_clip" in mode:
        assert "charts/critic_grad_norm" in m and "charts/actor_grad_norm" in m


def test_seeded_runs_are_identical_and_leave_the_global_rng_alone():
    torch.manual_seed(1234)
    rng_before = torch.get_rng_state()
    a, b = EnhancedRL(tiny_cfg(ensemble_target="redq_min")), EnhancedRL(
        tiny_cfg(ensemble_target="redq_min"))
    assert torch.equal(torch.get_rng_state(), rng_before)
    for i in range(4):
        assert a.update(make_batch(seed=i)) == b.update(make_batch(seed=i))
    c = EnhancedRL(tiny_cfg(seed=1))
    assert c.update(make_batch(seed=9)) != a.update(make_batch(seed=9))


def test_state_dict_round_trip():
    a = EnhancedRL(tiny_cfg(ensemble_target="redq_min"))
    for i in range(3):
        a.update(make_batch(seed=i))
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)  # as the trainer's checkpoint does
    buf.seek(0)
    c = EnhancedRL(tiny_cfg(ensemble_target="redq_min", seed=123))
    c.load_state_dict(torch.load(buf, weights_only=True))
    assert c.step == 3
    x = make_batch(seed=9)
    np.testing.assert_array_equal(a.act(x["pair_state"]), c.act(x["pair_state"]))
    for name in ("critic", "critic_target", "actor_target"):
        for k, v in getattr(a, name).state_dict().items():
            assert torch.equal(v, getattr(c, name).state_dict()[k]), (name, k)
    # optimizer moments, step counter and REDQ generator came along: training continues alike
    for i in range(2):
        assert a.update(make_batch(seed=10 + i)) == c.update(make_batch(seed=10 + i))


def test_act_accepts_numpy_and_leading_dims():
    learner = EnhancedRL(tiny_cfg())
    x = make_batch()["pair_state"]
    out = learner.act(x.numpy())
    assert isinstance(out, np.ndarray) and out.shape == (16, L, A) and out.dtype == np.float32
    np.testing.assert_allclose(out.reshape(-1, A), learner.act(x.reshape(-1, D)), atol=1e-6)
    assert learner.actor.training  # act() restores the mode


def test_export_parity_and_checksum(tmp_path):
    learner = EnhancedRL(tiny_cfg())
    learner.update(make_batch())
    path = tmp_path / "actor.pt"
    sha = export_actor(learner.actor, path)
    assert sha == file_sha256(path) and len(sha) == 64
    assert not (tmp_path / "actor.pt.tmp").exists()
    scripted = load_actor(path, sha)
    example = torch.randn(64, D) * 3
    assert check_parity(learner.actor, scripted, example, atol=1e-5) <= 1e-5
    # a different actor is not "at parity"
    other = EnhancedRL(tiny_cfg(seed=5)).actor
    assert check_parity(other, scripted, example) > 1e-3
    with pytest.raises(ValueError, match="checksum"):
        load_actor(path, "0" * 64)
    path.write_bytes(path.read_bytes() + b"\0")  # tampered file
    with pytest.raises(ValueError, match="checksum"):
        load_actor(path, sha)


def test_ensemble_diagnostics_per_critic_set():
    learner = EnhancedRL(tiny_cfg(actor_delay=1))
    batch = make_batch()
    m = learner.update(batch)
    keys = {f"q/set{i}_{what}_{stat}" for i in (0, 1) for what in ("pi", "logged")
            for stat in ("mean", "std")}
    assert keys <= set(m)
    assert all(math.isfinite(m[k]) for k in keys) and all(m[k] > 0 for k in keys
                                                           if k.endswith("_std"))
    # by hand, after the update: the critics of each set on the exposed pairs
    present = batch["mask"].reshape(-1) > 0
    s, a = batch["pair_state"].reshape(-1, D)[present], batch["action"].reshape(-1, A)[present]
    with torch.no_grad():
        for what, act in (("logged", a), ("pi", learner.actor(s))):
            q = learner.critic(s, act)  # [2, 3, M]
            for i in (0, 1):
                assert math.isclose(m[f"q/set{i}_{what}_mean"], float(q[i].mean()), abs_tol=1e-5)
                assert math.isclose(m[f"q/set{i}_{what}_std"],
                                    float(q[i].std(0, unbiased=False).mean()), abs_tol=1e-5)
    assert not keys & set(learner.update(batch, diagnostics=False))


def test_grad_sync_every_step_even_without_exposed_pairs():
    """Under torchrun every rank must join every all-reduce: a batch without any exposed
    pair still syncs (a zero) actor gradient and steps, as the other ranks do."""
    calls: list[int] = []
    learner = EnhancedRL(tiny_cfg(actor_delay=1), grad_sync=lambda ps: calls.append(len(ps)))
    n_critic, n_actor = len(list(learner.critic.parameters())), len(
        list(learner.actor.parameters()))
    learner.update(make_batch())
    assert calls == [n_critic, n_actor]
    empty = make_batch(seed=1)
    empty["mask"][:] = 0.0
    calls.clear()
    m = learner.update(empty)
    assert calls == [n_critic, n_actor] and "losses/actor" not in m
    assert all(p.grad is not None and not p.grad.any() for p in learner.actor.parameters())


def test_non_finite_batch_or_loss_stops_the_update():
    """A NaN in any batch entry, or a loss that overflows, raises NonFiniteError naming it."""
    from model.enhanced_rl import NonFiniteError

    learner = EnhancedRL(tiny_cfg())
    batch = make_batch()
    batch["pair_state"][0, 0, 3] = float("nan")
    with pytest.raises(NonFiniteError, match="pair_state"):
        learner.update(batch)
    assert learner.step == 0  # refused before any step
    batch = make_batch()
    batch["reward"][:] = 3e38  # finite input, the squared TD error overflows
    with pytest.raises(NonFiniteError, match="losses/critic"):
        learner.update(batch)
