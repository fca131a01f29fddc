"""Losses of EnhancedRL (ALGORITHM.md sections 4-5), as pure functions with shapes.

Notation: S critic sets, m critics per set, B request lists, L list slots, A action dims.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def box_overshoot(a: torch.Tensor, center: torch.Tensor, h: float) -> torch.Tensor:
    """over_k = max(0, a_k - (c_k + h)) + max(0, (c_k - h) - a_k).  [..., A]"""
    return torch.relu(a - (center + h)) + torch.relu((center - h) - a)


def box_penalty(a: torch.Tensor, center: torch.Tensor, h: float, kappa_d: float) -> torch.Tensor:
    """d(a; B) = sum_k (exp(kappa_d * over_k) - 1): 0 inside the box.  [...]"""
    return torch.expm1(kappa_d * box_overshoot(a, center, h)).sum(-1)


def target_multiplier(a: torch.Tensor, center: torch.Tensor, h: float,
                      kappa_phi: float) -> torch.Tensor:
    """phi(a; B) = exp(-kappa_phi * sum_k over_k): 1 inside the box.  [...]"""
    return torch.exp(-kappa_phi * box_overshoot(a, center, h).sum(-1))


def list_td_target(reward: torch.Tensor, mask: torch.Tensor, next_q: torch.Tensor,
                   next_phi: torch.Tensor, next_mask: torch.Tensor, done: torch.Tensor,
                   gamma: float) -> torch.Tensor:
    """List-level target per critic (ALGORITHM.md section 5):

        Y_ij(t) = sum_k mask_tk r^(i)_tk
                  + gamma (1 - done_t) sum_k next_mask_k phi_k Q'_ij(s_{t+1,k}, mu'(s_{t+1,k}))

    reward [B, S, L], mask [B, L], next_q [S, m, B, L], next_phi [B, L], next_mask [B, L],
    done [B] -> Y [S, m, B].
    """
    r = (reward * mask.unsqueeze(1)).sum(-1)  # [B, S]
    boot = (next_q * (next_phi * next_mask)).sum(-1)  # [S, m, B]
    y = r.T.unsqueeze(1) + gamma * (1.0 - done) * boot  # [S, m, B]
    assert y.shape == next_q.shape[:3], y.shape
    return y


def pair_td_target(reward: torch.Tensor, next_q: torch.Tensor, next_phi: torch.Tensor,
                   next_mask: torch.Tensor, done: torch.Tensor, gamma: float) -> torch.Tensor:
    """[R] ablation: per-pair TD with the mean next-list value.

        y_ij(t, k) = r^(i)_tk + gamma (1 - done_t) mean_{k' in next list} phi Q'_ij

    reward [B, S, L] -> y [S, m, B, L] (masked later by the loss).
    """
    n_next = next_mask.sum(-1).clamp(min=1.0)  # [B]
    boot = (next_q * (next_phi * next_mask)).sum(-1) / n_next  # [S, m, B]
    return reward.permute(1, 0, 2).unsqueeze(1) + (gamma * (1.0 - done) * boot).unsqueeze(-1)


def critic_loss(q: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L = sum_ij mean_t (Qsum_ij(t) - Y_ij(t))^2, Qsum_ij(t) = sum_k mask_tk Q_ij(s_tk, a_tk).

    q [S, m, B, L], mask [B, L]; target [S, m, B] (list TD) or [S, m, B, L] (pair TD, then
    the squared error is averaged over present pairs instead).
    """
    if target.dim() == 3:
        qsum = (q * mask).sum(-1)  # [S, m, B]
        return ((qsum - target) ** 2).mean(-1).sum()
    err = ((q - target) ** 2 * mask).sum((-1, -2)) / mask.sum().clamp(min=1.0)  # [S, m]
    return err.sum()


class ActorLoss(NamedTuple):
    total: torch.Tensor
    q_term: torch.Tensor
    box_term: torch.Tensor
    std_term: torch.Tensor


def actor_loss(q_pi: torch.Tensor, penalty_d: torch.Tensor, set_weights: torch.Tensor,
               eta: float, lam: float) -> ActorLoss:
    """L = mean_pairs[ -sum_i w_i Qbar_i(s, mu(s)) + eta d(mu(s); B) + lam sum_i w_i sigma_i ]

    q_pi [S, m, M] (current critics at the actor's actions), penalty_d [M], set_weights [S].
    sigma_i is the population std (unbiased=False) over the m critics of set i.
    """
    w = set_weights.view(-1, 1)  # [S, 1]
    q_term = -(w * q_pi.mean(1)).sum(0)  # [M]
    std_term = (w * q_pi.std(1, unbiased=False)).sum(0)  # [M]
    total = (q_term + eta * penalty_d + lam * std_term).mean()
    return ActorLoss(total, q_term.mean(), (eta * penalty_d).mean(), (lam * std_term).mean())
