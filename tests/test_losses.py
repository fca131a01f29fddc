"""Losses against hand-computed values (ALGORITHM.md sections 4-5)."""

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


def test_box_penalty_and_phi_by_hand():
    c = torch.zeros(1, 3)
    a = torch.tensor([[0.25, -0.05, -0.35]])  # over: 0.1, 0 (inside), 0.2
    over = box_overshoot(a, c, 0.15)
    assert torch.allclose(over, torch.tensor([[0.1, 0.0, 0.2]]), atol=1e-6)
    d = box_penalty(a, c, 0.15, kappa_d=10.0)
    assert d.item() == pytest.approx((math.e - 1) + 0 + (math.exp(2) - 1), rel=1e-5)
    phi = target_multiplier(a, c, 0.15, kappa_phi=10.0)
    assert phi.item() == pytest.approx(math.exp(-10 * 0.3), rel=1e-5)
    inside = torch.tensor([[0.1, -0.1, 0.15]])
    assert box_penalty(inside, c, 0.15, 10.0).item() == 0.0
    assert target_multiplier(inside, c, 0.15, 10.0).item() == 1.0


def test_list_td_target_by_hand():
    # one list (B=1) of 3 present items, next list of 2, S=2 sets, m=1 critic each, L=4 slots
    reward = torch.tensor([[[1.0, 2.0, 3.0, 9.0], [0.5, 0.0, 0.5, 9.0]]])  # [B,S,L], slot 3 pad
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    next_q = torch.tensor([[[[10.0, 20.0, 99.0, 99.0]]], [[[1.0, 2.0, 99.0, 99.0]]]])  # [S,m,B,L]
    next_phi = torch.tensor([[1.0, 0.5, 1.0, 1.0]])
    next_mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    y = list_td_target(reward, mask, next_q, next_phi, next_mask, torch.tensor([0.0]), 0.9)
    # set 0: 6 + 0.9 * (10 + 0.5 * 20) = 24; set 1: 1 + 0.9 * (1 + 0.5 * 2) = 2.8
    assert torch.allclose(y.flatten(), torch.tensor([24.0, 2.8]))
    y_done = list_td_target(reward, mask, next_q, next_phi, next_mask, torch.tensor([1.0]), 0.9)
    assert torch.allclose(y_done.flatten(), torch.tensor([6.0, 1.0]))


def test_pair_td_target_uses_mean_next_value():
    reward = torch.tensor([[[1.0, 2.0]]])  # B=1, S=1, L=2
    next_q = torch.tensor([[[[4.0, 8.0]]]])
    y = pair_td_target(reward, next_q, torch.ones(1, 2), torch.ones(1, 2), torch.zeros(1), 0.5)
    assert torch.allclose(y.flatten(), torch.tensor([1 + 0.5 * 6, 2 + 0.5 * 6]))


def test_critic_loss_by_hand():
    q = torch.tensor([[[[1.0, 2.0, 5.0]], [[0.0, 0.0, 5.0]]]])  # [S=1, m=2, B=1, L=3]
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    target = torch.tensor([[[4.0], [1.0]]])  # [S, m, B]
    # critic 0: (3 - 4)^2 = 1; critic 1: (0 - 1)^2 = 1 -> sum 2
    assert critic_loss(q, mask, target).item() == pytest.approx(2.0)


def test_actor_loss_by_hand():
    q_pi = torch.tensor([[[1.0, 3.0], [3.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]])  # [S=2, m=2, M=2]
    pen = torch.tensor([0.0, 1.0])
    w = torch.tensor([1.0, 0.5])
    out = actor_loss(q_pi, pen, w, eta=2.0, lam=0.5)
    # pair 0: -(1*2 + 0.5*2) + 0 + 0.5*(1*1 + 0.5*0) = -3 + 0.5 = -2.5
    # pair 1: -(1*4 + 0.5*2) + 2*1 + 0.5*(1*1) = -5 + 2 + 0.5 = -2.5
    assert out.total.item() == pytest.approx(-2.5)
    assert out.box_term.item() == pytest.approx(1.0)
    assert out.std_term.item() == pytest.approx(0.5)
