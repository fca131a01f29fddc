"""Losses of EnhancedRL (docs/ALGORITHM.md sections 4-5), as pure functions with shapes.

Notation: S critic sets (q in docs/ALGORITHM.md), m critics per set, B request lists, L list
slots, M pairs, A action dims. `mask` [B, L] is 1 for a present item of list t and
`next_mask` [B, L] for a present item of list t+1 (all zeros when the session ended).
Masked (absent) slots never contribute, whatever value their Q or reward holds.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from core.fusion import ACTION_HIGH, ACTION_LOW, N_OBJ
from core.schema import OBJECTIVE_HEADS


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
                         next_mask: torch.Tensor, done: torch.Tensor,
                         same_slots: bool = True) -> None:
    """Shapes of a TD target's inputs; the next list may have another number of slots
    than list t (its candidates) unless `same_slots`."""
    b, s, slots = reward.shape
    assert next_q.dim() == 4 and next_q.shape[0] == s and next_q.shape[2] == b, (
        reward.shape, next_q.shape)
    assert not same_slots or next_q.shape[3] == slots, (reward.shape, next_q.shape)
    assert next_phi.shape == next_q.shape[2:] and next_mask.shape == next_q.shape[2:], (
        next_phi.shape, next_mask.shape, next_q.shape)
    assert done.shape == (b,), done.shape


def redq_min(value: torch.Tensor, subsets: torch.Tensor) -> torch.Tensor:
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

    reward [B, S, L], mask [B, L], next_q [S, m, B, L'], next_phi [B, L'], next_mask [B, L'],
    done [B] -> Y [S, m, B]. The next list's L' slots may differ from L (td_next =
    'selected_list' passes the next request's K candidates, next_phi weighted by their
    soft top-l membership).
    """
    _check_target_inputs(reward, next_q, next_phi, next_mask, done, same_slots=False)
    r = torch.where(mask.unsqueeze(1) > 0, reward, torch.zeros_like(reward)).sum(-1)  # [B, S]
    v_next = next_list_value(next_q, next_phi, next_mask)  # [S, m, B]
    if redq_subsets is not None:
        v_next = redq_min(v_next, redq_subsets)
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
        v_next = redq_min(v_next, redq_subsets)
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


# --- selection (docs/ALGORITHM.md section 9) ------------------------------------------------
def fused_log_score(preds: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """core.fusion.log_fused_score in torch, differentiable in the action:

        log score = sum_i power_i log(obj_i + bias_i),   (power, bias) = to_physical(action)

    preds [..., NUM_HEADS], action [..., A] in normalised units (clamped to [-1, 1]) -> [...].
    """
    lo = torch.as_tensor(ACTION_LOW, dtype=action.dtype, device=action.device)
    hi = torch.as_tensor(ACTION_HIGH, dtype=action.dtype, device=action.device)
    phys = lo + (action.clamp(-1.0, 1.0) + 1.0) * 0.5 * (hi - lo)
    power, bias = phys[..., :N_OBJ], phys[..., N_OBJ:]
    obj = preds[..., list(OBJECTIVE_HEADS)].to(action.dtype)
    obj = torch.cat([obj[..., :-1], 1.0 - obj[..., -1:]], -1).clamp(0.0, 1.0)  # noskip
    return (power * torch.log(obj + bias)).sum(-1)


def soft_top_l(score: torch.Tensor, mask: torch.Tensor, n_select: torch.Tensor,
               temperature: float, iters: int = 60) -> torch.Tensor:
    """Smoothed membership of the top l: p_j = sigmoid((z_j - t) / T) over the present
    candidates of each row, with the threshold t such that sum_j p_j = l.

    t is found by bisection (no graph); its gradient is the implicit one,

        dt/dz_j = g_j = p_j (1 - p_j) / sum_k p_k (1 - p_k),

    attached as t + sum_j g_j (z_j - stop_grad(z_j)), so that sum_j p_j stays l under any
    change of the scores: raising one candidate's score raises its p and lowers the others'
    in proportion to how close they sit to the margin. As T -> 0, p -> the hard top-l.

    score [B, K], mask [B, K] (1 present), n_select [B] (l <= present count; larger is
    clamped) -> p [B, K], 0 on absent slots.
    """
    assert score.shape == mask.shape and n_select.shape == score.shape[:1], (
        score.shape, mask.shape, n_select.shape)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    present = mask > 0
    n_present = present.sum(-1)
    l_sel = torch.minimum(n_select.to(score.dtype), n_present.to(score.dtype))  # [B]
    z = score.detach()
    with torch.no_grad():
        inf = torch.full_like(z, math.inf)
        lo = torch.where(present, z, inf).amin(-1) - 40.0 * temperature  # sum p ~ n >= l
        hi = torch.where(present, z, -inf).amax(-1) + 40.0 * temperature  # sum p ~ 0 <= l
        empty = n_present == 0
        lo, hi = torch.where(empty, 0.0, lo), torch.where(empty, 0.0, hi)
        zs = torch.where(present, z, torch.zeros_like(z))
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            total = torch.where(present, torch.sigmoid((zs - mid[:, None]) / temperature),
                                torch.zeros_like(z)).sum(-1)
            up = total > l_sel
            lo, hi = torch.where(up, mid, lo), torch.where(up, hi, mid)
        t = 0.5 * (lo + hi)
        p0 = torch.where(present, torch.sigmoid((zs - t[:, None]) / temperature),
                         torch.zeros_like(z))
        w = p0 * (1.0 - p0)
        g = w / w.sum(-1, keepdim=True).clamp_min(1e-30)  # [B, K]
    zg = torch.where(present, score, torch.zeros_like(score))
    t_graph = t + (g * (zg - zs)).sum(-1)  # value t, gradient the implicit dt/dz
    p = torch.sigmoid((zg - t_graph[:, None]) / temperature)
    return torch.where(present, p, torch.zeros_like(p))


def selection_actor_loss(q_pi: torch.Tensor, penalty_d: torch.Tensor, weight: torch.Tensor,
                         box_weight: torch.Tensor, n_list: torch.Tensor,
                         set_weights: torch.Tensor, eta: float, lam: float) -> ActorLoss:
    """The actor loss over a request's K candidates, each weighted by its (soft) membership
    of the shown list:

        L = sum_{t,j} weight_tj [ -sum_i w_i Qbar_i(s_tj, mu(s_tj))
                                  + lambda sum_i w_i sigma_i(s_tj, mu(s_tj)) ] / sum_t l_t
            + eta sum_{t,j} box_weight_tj d(mu(s_tj); B_tj) / sum_{t,j} box_weight_tj

    With weight = box_weight = the logged exposure (1 on the l shown, 0 elsewhere) it is
    `actor_loss` over the exposed pairs exactly (the paper's loss). With weight = p of
    `soft_top_l` over the fused scores of the actor's actions (the selection-aware
    objective), the gradient of a candidate's action also moves its membership: up when its
    Q exceeds the membership-weighted Q of the candidates at the margin, down when below.

    q_pi [S, m, B, K], penalty_d / weight / box_weight [B, K], n_list [B] (l_t),
    set_weights [S]. Absent slots must carry weight 0 and finite values.
    """
    s = q_pi.shape[0]
    assert q_pi.dim() == 4 and q_pi.shape[2:] == weight.shape == penalty_d.shape \
        == box_weight.shape, (q_pi.shape, weight.shape, penalty_d.shape, box_weight.shape)
    w = set_weights.view(s, 1, 1).to(q_pi)  # [S, 1, 1]
    q_term = -(w * q_pi.mean(1)).sum(0)  # [B, K]
    sigma = q_pi.var(1, unbiased=False).clamp_min(1e-12).sqrt()  # [S, B, K]
    std_term = lam * (w * sigma).sum(0)  # [B, K]
    denom = n_list.sum().clamp_min(1.0)
    q_mean = (weight * q_term).sum() / denom
    std_mean = (weight * std_term).sum() / denom
    box_mean = eta * (box_weight * penalty_d).sum() / box_weight.sum().clamp_min(1.0)
    return ActorLoss(total=q_mean + box_mean + std_mean, q_term=q_mean, box_term=box_mean,
                     std_term=std_mean)
