"""Losses against hand-computed values (docs/ALGORITHM.md sections 4-5)."""

from __future__ import annotations

import math

import pytest
import torch

from model.losses import (
    actor_loss,
    box_overshoot,
    box_penalty,
    critic_loss,
    list_td_target,
    pair_td_target,
    target_multiplier,
)


def test_box_overshoot_penalty_and_phi_by_hand():
    c = torch.zeros(1, 3)
    a = torch.tensor([[0.25, -0.05, -0.35]])  # h = 0.15 -> over: 0.1, 0 (inside), 0.2
    over = box_overshoot(a, c, 0.15)
    torch.testing.assert_close(over, torch.tensor([[0.1, 0.0, 0.2]]))
    d = box_penalty(a, c, 0.15, kappa_d=10.0)
    assert d.item() == pytest.approx((math.e - 1) + 0 + (math.exp(2) - 1), rel=1e-5)
    phi = target_multiplier(a, c, 0.15, kappa_phi=10.0)
    assert phi.item() == pytest.approx(math.exp(-10 * 0.3), rel=1e-5)
    # the single-dim example: centre 0, a = 0.25 -> over 0.1 -> d = e - 1, phi = e^-1
    one = torch.tensor([0.25])
    assert box_penalty(one, torch.zeros(1), 0.15, 10.0).item() == pytest.approx(math.e - 1,
                                                                              rel=1e-5)
    assert target_multiplier(one, torch.zeros(1), 0.15, 10.0).item() == pytest.approx(
        math.exp(-1), rel=1e-5)
    # inside (edges included): d = 0, phi = 1
    inside = torch.tensor([[0.1, -0.1, 0.15]])
    assert box_penalty(inside, c, 0.15, 10.0).item() == 0.0
    assert target_multiplier(inside, c, 0.15, 10.0).item() == 1.0
    # a shifted centre: c = 0.5, box [0.35, 0.65]; a = 0.3 -> over 0.05 below
    shifted = box_overshoot(torch.tensor([0.3, 0.7]), torch.tensor([0.5, 0.5]), 0.15)
    torch.testing.assert_close(shifted, torch.tensor([0.05, 0.05]))


def test_box_penalty_gradient_points_back_into_the_box():
    a = torch.tensor([0.4, -0.4, 0.0], requires_grad=True)
    box_penalty(a, torch.zeros(3), 0.15, 10.0).backward()
    assert a.grad[0] > 0 and a.grad[1] < 0 and a.grad[2] == 0


# A list of 3 present items (slot 3 is padding holding garbage), the next list has 2 items.
# S = 2 sets, m = 1 critic each, B = 1, L = 4.
REWARD = torch.tensor([[[1.0, 2.0, 3.0, 9.0], [0.5, 0.0, 0.5, 9.0]]])  # [B, S, L]
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
NEXT_Q = torch.tensor([[[[10.0, 20.0, 99.0, float("nan")]]],
                       [[[1.0, 2.0, 99.0, float("nan")]]]])  # [S, m, B, L]
NEXT_PHI = torch.tensor([[1.0, 0.5, 1.0, 1.0]])
NEXT_MASK = torch.tensor([[1.0, 1.0, 0.0, 0.0]])


def test_list_td_target_by_hand_with_masks_and_done():
    y = list_td_target(REWARD, MASK, NEXT_Q, NEXT_PHI, NEXT_MASK, torch.tensor([0.0]), 0.9)
    assert y.shape == (2, 1, 1)
    # set 0: (1 + 2 + 3) + 0.9 * (1 * 10 + 0.5 * 20) = 24
    # set 1: (0.5 + 0 + 0.5) + 0.9 * (1 * 1 + 0.5 * 2) = 2.8   (padding 9 / 99 / NaN ignored)
    torch.testing.assert_close(y.flatten(), torch.tensor([24.0, 2.8]))
    y_done = list_td_target(REWARD, MASK, NEXT_Q, NEXT_PHI, NEXT_MASK, torch.tensor([1.0]), 0.9)
    torch.testing.assert_close(y_done.flatten(), torch.tensor([6.0, 1.0]))


def test_list_td_target_redq_min_takes_the_subset_min_of_the_list_value():
    # S = 1, m = 3, B = 1, L = 2: next-list values per critic: 3, 1, 7
    next_q = torch.tensor([[[[1.0, 2.0]], [[0.5, 0.5]], [[3.0, 4.0]]]])
    reward, ones = torch.zeros(1, 1, 2), torch.ones(1, 2)
    own = list_td_target(reward, ones, next_q, ones, ones, torch.zeros(1), 1.0)
    torch.testing.assert_close(own.flatten(), torch.tensor([3.0, 1.0, 7.0]))
    redq = list_td_target(reward, ones, next_q, ones, ones, torch.zeros(1), 1.0,
                          redq_subsets=torch.tensor([[0, 2]]))
    torch.testing.assert_close(redq.flatten(), torch.tensor([3.0, 3.0, 3.0]))


def test_pair_td_target_uses_mean_next_value():
    y = pair_td_target(REWARD, NEXT_Q, NEXT_PHI, NEXT_MASK, torch.tensor([0.0]), 0.9)
    assert y.shape == (2, 1, 1, 4)
    # mean next value: set 0 (10 + 10) / 2 = 10, set 1 (1 + 1) / 2 = 1
    torch.testing.assert_close(y[0, 0, 0, :3], torch.tensor([1.0, 2.0, 3.0]) + 0.9 * 10)
    torch.testing.assert_close(y[1, 0, 0, :3], torch.tensor([0.5, 0.0, 0.5]) + 0.9 * 1)
    # an empty next list (session ended) bootstraps nothing
    y_end = pair_td_target(REWARD, NEXT_Q, NEXT_PHI, torch.zeros(1, 4), torch.tensor([1.0]),
                           0.9)
    torch.testing.assert_close(y_end[:, 0, 0, :3], REWARD[0, :, :3])


def test_critic_loss_list_mode_by_hand():
    # [S=1, m=2, B=2, L=3]; list 0 has 2 items, list 1 has 3; padding holds 50 (ignored)
    q = torch.tensor([[[[1.0, 2.0, 50.0], [1.0, 1.0, 1.0]],
                       [[0.0, 0.0, 50.0], [2.0, 2.0, 2.0]]]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    target = torch.tensor([[[4.0, 3.0], [1.0, 4.0]]])  # [S, m, B]
    # critic 0: Qsum (3, 3) vs (4, 3): mean((1, 0)) = 0.5
    # critic 1: Qsum (0, 6) vs (1, 4): mean((1, 4)) = 2.5          -> sum 3.0
    assert critic_loss(q, mask, target).item() == pytest.approx(3.0)


def test_list_target_and_critic_loss_together_by_hand():
    # one critic per set at the current list (3 present items), target from the case above
    y = list_td_target(REWARD, MASK, NEXT_Q, NEXT_PHI, NEXT_MASK, torch.tensor([0.0]), 0.9)
    q = torch.tensor([[[[5.0, 5.0, 10.0, 123.0]]], [[[1.0, 0.5, 0.5, -7.0]]]])  # [S,m,B,L]
    # set 0: Qsum 20 vs 24 -> 16; set 1: Qsum 2 vs 2.8 -> 0.64
    assert critic_loss(q, MASK, y).item() == pytest.approx(16.64, rel=1e-5)


def test_critic_loss_pair_mode_by_hand():
    q = torch.tensor([[[[1.0, 2.0, 7.0]]]])  # [S=1, m=1, B=1, L=3]
    target = torch.tensor([[[[0.0, 4.0, 0.0]]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    # mean over the 2 present pairs of (1, 4) = 2.5
    assert critic_loss(q, mask, target).item() == pytest.approx(2.5)


def test_actor_loss_by_hand():
    q_pi = torch.tensor([[[1.0, 3.0], [3.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]])  # [S=2, m=2, M=2]
    pen = torch.tensor([0.0, 1.0])
    w = torch.tensor([1.0, 0.5])
    out = actor_loss(q_pi, pen, w, eta=2.0, lam=0.5)
    # Qbar: set 0 (2, 4), set 1 (2, 2); sigma (population): set 0 (1, 1), set 1 (0, 0)
    # pair 0: -(1*2 + 0.5*2) + 2*0 + 0.5*(1*1 + 0.5*0) = -3 + 0.5 = -2.5
    # pair 1: -(1*4 + 0.5*2) + 2*1 + 0.5*(1*1)         = -5 + 2 + 0.5 = -2.5
    assert out.total.item() == pytest.approx(-2.5, abs=1e-5)
    assert out.q_term.item() == pytest.approx(-4.0, abs=1e-5)
    assert out.box_term.item() == pytest.approx(1.0, abs=1e-5)
    # unbiased=False: the sample std would give 0.5 * sqrt(2) instead of 0.5
    assert out.std_term.item() == pytest.approx(0.5, abs=1e-5)


def test_actor_loss_gradient_is_finite_when_critics_agree():
    q_pi = torch.ones(2, 1, 4, requires_grad=True)  # m = 1: sigma = 0 everywhere
    out = actor_loss(q_pi, torch.zeros(4), torch.ones(2), eta=1.0, lam=0.5)
    out.total.backward()
    assert torch.isfinite(q_pi.grad).all()
    torch.testing.assert_close(q_pi.grad, torch.full_like(q_pi, -0.25))  # -w / M
