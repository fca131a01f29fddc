"""Losses of EnhancedRL (docs/ALGORITHM.md sections 4-5), as pure functions with shapes.

Notation: S critic sets (q in docs/ALGORITHM.md), m critics per set, B request lists, L list
slots, M pairs, A action dims. `mask` [B, L] is 1 for a present item of list t and
`next_mask` [B, L] for a present item of list t+1 (all zeros when the session ended).
Masked (absent) slots never contribute, whatever value their Q or reward holds.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


# --- the box (docs/ALGORITHM.md section 4) -----------------------------------------------------
def box_overshoot(a: torch.Tensor, center: torch.Tensor, h: float) -> torch.Tensor:
    """How far each action dim lies outside the box B = [center - h, center + h]:

        over_k = max(0, a_k - (c_k + h)) + max(0, (c_k - h) - a_k)       [..., A], >= 0
    """
    assert a.shape == center.shape, (a.shape, center.shape)
    return torch.relu(a - (center + h)) + torch.relu((center - h) - a)


def box_penalty(a: torch.Tensor, center: torch.Tensor, h: float, kappa_d: float) -> torch.Tensor:
    """Actor penalty d(a; B) = sum_k (exp(kappa_d * over_k) - 1): 0 inside the box, grows
    exponentially outside ([R] form of "exponential outside the box").          [...]"""
    return torch.expm1(kappa_d * box_overshoot(a, center, h)).sum(-1)


def target_multiplier(a: torch.Tensor, center: torch.Tensor, h: float,
                      kappa_phi: float) -> torch.Tensor:
    """Target multiplier phi(a; B) = exp(-kappa_phi * sum_k over_k): 1 inside the box,
    decaying outside, so the critic does not bootstrap from actions it never saw.   [...]"""
    return torch.exp(-kappa_phi * box_overshoot(a, center, h).sum(-1))


# --- critic targets (docs/ALGORITHM.md section 5) -----------------------------------------------
def _check_target_inputs(reward: torch.Tensor, next_q: torch.Tensor, next_phi: torch.Tensor,
                         next_mask: torch.Tensor, done: torch.Tensor) -> None:
    b, s, slots = reward.shape
    assert next_q.dim() == 4 and next_q.shape[0] == s and next_q.shape[2:] == (b, slots), (
        reward.shape, next_q.shape)
    assert next_phi.shape == (b, slots) and next_mask.shape == (b, slots), (
        next_phi.shape, next_mask.shape)
    assert done.shape == (b,), done.shape


def _redq_min(value: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
    """REDQ: every critic of set i takes min_{j' in subsets[i]} value[i, j'].

    value [S, m, ...], subsets [S, k] (indices into m) -> [S, m, ...].
    """
    s, m = value.shape[:2]
    assert subsets.dim() == 2 and subsets.shape[0] == s, (subsets.shape, value.shape)
    idx = subsets.view(s, -1, *([1] * (value.dim() - 2))).expand(-1, -1, *value.shape[2:])
    low = torch.gather(value, 1, idx).min(1, keepdim=True).values  # [S, 1, ...]
    return low.expand(s, m, *value.shape[2:])


def next_list_value(next_q: torch.Tensor, next_phi: torch.Tensor,
                    next_mask: torch.Tensor) -> torch.Tensor:
    """V'_ij(t+1) = sum_{k in list t+1} phi_k Q'_ij(s_{t+1,k}, mu'(s_{t+1,k})).

    next_q [S, m, B, L], next_phi [B, L], next_mask [B, L] -> [S, m, B]. Absent slots are
    dropped with `where` (not multiplied by 0), so a NaN in a padded slot cannot leak.
    """
    w = next_phi * next_mask  # [B, L]
    return torch.where(next_mask > 0, next_q * w, torch.zeros_like(next_q)).sum(-1)


def list_td_target(reward: torch.Tensor, mask: torch.Tensor, next_q: torch.Tensor,
                   next_phi: torch.Tensor, next_mask: torch.Tensor, done: torch.Tensor,
                   gamma: float, redq_subsets: torch.Tensor | None = None) -> torch.Tensor:
    """List-level target per critic (docs/ALGORITHM.md section 5, the paper's form):

        Y_ij(t) = sum_{k in list t} r^(i)_tk
                  + gamma (1 - done_t) sum_{k in list t+1} phi_k Q'_ij(s_{t+1,k}, mu'(s_{t+1,k}))

    with phi_k = phi(mu'(s_{t+1,k}); B_{t+1,k}). Each critic bootstraps from its own target
    ("no min over the ensemble"). [R] option `redq_subsets` [S, k]: every critic of set i
    bootstraps from min_{j' in subset_i} of the NEXT-LIST value sum_k phi Q'_ij' (the min
    is taken at the list level, the unit of the TD error, not per pair).

    reward [B, S, L], mask [B, L], next_q [S, m, B, L], next_phi [B, L], next_mask [B, L],
    done [B] -> Y [S, m, B].
    """
    _check_target_inputs(reward, next_q, next_phi, next_mask, done)
    r = torch.where(mask.unsqueeze(1) > 0, reward, torch.zeros_like(reward)).sum(-1)  # [B, S]
    v_next = next_list_value(next_q, next_phi, next_mask)  # [S, m, B]
    if redq_subsets is not None:
        v_next = _redq_min(v_next, redq_subsets)
    y = r.T.unsqueeze(1) + gamma * (1.0 - done) * v_next  # [S, 1, B] + [S, m, B]
    assert y.shape == next_q.shape[:3], y.shape
    return y


def pair_td_target(reward: torch.Tensor, next_q: torch.Tensor, next_phi: torch.Tensor,
                   next_mask: torch.Tensor, done: torch.Tensor, gamma: float,
                   redq_subsets: torch.Tensor | None = None) -> torch.Tensor:
    """[R] ablation (td_mode = 'pair'): one TD error per pair, bootstrapping from the MEAN
    next-list value (so that the target's scale is that of one pair):

        y_ij(t, k) = r^(i)_tk + gamma (1 - done_t) (1 / n_{t+1}) sum_{k' in list t+1} phi_k' Q'_ij

    n_{t+1} = number of present next pairs (the bootstrap is 0 for an empty next list).
    `redq_subsets` as in `list_td_target`. reward [B, S, L] ... -> y [S, m, B, L]; absent
    pairs of list t are dropped by `critic_loss`'s mask.
    """
    _check_target_inputs(reward, next_q, next_phi, next_mask, done)
    n_next = next_mask.sum(-1).clamp(min=1.0)  # [B]
    v_next = next_list_value(next_q, next_phi, next_mask) / n_next  # [S, m, B]
    if redq_subsets is not None:
        v_next = _redq_min(v_next, redq_subsets)
    boot = (gamma * (1.0 - done) * v_next).unsqueeze(-1)  # [S, m, B, 1]
    y = reward.permute(1, 0, 2).unsqueeze(1) + boot  # [S, 1, B, L] + [S, m, B, 1]
    assert y.shape == next_q.shape, y.shape
    return y


# --- losses ---------------------------------------------------------------------------------
def critic_loss(q: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Sum over the S*m critics of a mean squared TD error (docs/ALGORITHM.md section 5).

    List mode, target [S, m, B]:
        L = sum_ij mean_t (Qsum_ij(t) - Y_ij(t))^2,   Qsum_ij(t) = sum_k mask_tk Q_ij(s_tk, a_tk)
    Pair mode, target [S, m, B, L]: L = sum_ij mean over present pairs (Q_ij - y_ij)^2.
    Summing (not averaging) over critics keeps each critic's gradient independent of E.

    q [S, m, B, L] (current critics at the logged pairs), mask [B, L] -> scalar.
    """
    assert q.dim() == 4 and q.shape[2:] == mask.shape, (q.shape, mask.shape)
    present = mask > 0
    q = torch.where(present, q, torch.zeros_like(q))  # absent slots never count
    if target.dim() == 3:
        assert target.shape == q.shape[:3], (target.shape, q.shape)
        qsum = q.sum(-1)  # [S, m, B]
        return ((qsum - target) ** 2).mean(-1).sum()
    assert target.shape == q.shape, (target.shape, q.shape)
    err = torch.where(present, (q - target) ** 2, torch.zeros_like(q))  # [S, m, B, L]
    return (err.sum((-1, -2)) / present.sum().clamp(min=1)).sum()


class ActorLoss(NamedTuple):
    """Parts of the actor loss, each a scalar averaged over the pairs (for logging)."""

    total: torch.Tensor
    """The loss to minimise: q_term + box_term + std_term."""
    q_term: torch.Tensor
    """mean_pairs(-sum_i w_i Qbar_i)."""
    box_term: torch.Tensor
    """mean_pairs(eta * d), with its weight."""
    std_term: torch.Tensor
    """mean_pairs(lambda * sum_i w_i sigma_i), with its weight."""


def actor_loss(q_pi: torch.Tensor, penalty_d: torch.Tensor, set_weights: torch.Tensor,
               eta: float, lam: float) -> ActorLoss:
    """EnhancedRL actor loss (docs/ALGORITHM.md section 5), over the M exposed pairs:

        L = mean_pairs[ -sum_i w_i Qbar_i(s, mu(s)) + eta d(mu(s); B(s))
                        + lambda sum_i w_i sigma_i(s, mu(s)) ]

    Qbar_i / sigma_i: mean / standard deviation over the m critics of set i. sigma uses the
    population form (unbiased=False, divide by m): it is defined for m = 1 (then 0) and is
    the ensemble's own spread, not an estimate of a wider population. It is computed as
    sqrt(max(var, 1e-12)): the plain std has a 0/0 (NaN) gradient where all m critics agree.

    q_pi [S, m, M] (current critics at the actor's actions), penalty_d [M], set_weights [S].
    """
    s, _, m_pairs = q_pi.shape
    assert penalty_d.shape == (m_pairs,) and set_weights.shape == (s,), (
        q_pi.shape, penalty_d.shape, set_weights.shape)
    w = set_weights.view(s, 1).to(q_pi)  # [S, 1]
    q_term = -(w * q_pi.mean(1)).sum(0)  # [M]
    sigma = q_pi.var(1, unbiased=False).clamp_min(1e-12).sqrt()  # [S, M]
    std_term = lam * (w * sigma).sum(0)  # [M]
    box_term = eta * penalty_d  # [M]
    return ActorLoss(total=(q_term + box_term + std_term).mean(), q_term=q_term.mean(),
                     box_term=box_term.mean(), std_term=std_term.mean())
