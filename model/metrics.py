"""Offline evaluation metrics (ALGORITHM.md section 7), numpy."""

from __future__ import annotations

import math

import numpy as np


def discounted_returns(session_ids: np.ndarray, request_index: np.ndarray,
                       list_reward: np.ndarray, gamma: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per session, G = sum_t gamma^(t - t0) r_t from its first logged request t0.

    Returns (sessions sorted, returns aligned with them).
    """
    sess = np.asarray(session_ids)
    idx = np.asarray(request_index, dtype=np.int64)
    r = np.asarray(list_reward, dtype=np.float64)
    uniq, inv = np.unique(sess, return_inverse=True)
    first = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(first, inv, idx)
    g = np.zeros(len(uniq))
    np.add.at(g, inv, r * gamma ** (idx - first[inv]))
    return uniq, g


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    return -0.5 * ((x - mean) / sigma) ** 2 - math.log(sigma * math.sqrt(2 * math.pi))


def ncis(logged_action: np.ndarray, box_center: np.ndarray, mask: np.ndarray,
         eval_action: np.ndarray, returns: np.ndarray, *, half_width: float, sigma: float,
         c: float = 10.0, n_boot: int = 200, seed: int = 0) -> tuple[float, float, float]:
    """Normalised capped importance sampling estimate of the cumulative reward.

    Units n are sessions, represented by their first request's list of l pairs:
      pi_b(a|s) = prod_k 1/(2h)             (uniform box; the logged action lies in its box.
                                             Clipping at [-1, 1] puts mass on the edge; we
                                             ignore it, a known small bias)
      pi_e(a|s) = prod_k N(a_k; mu_e(s)_k, sigma^2)
      ratio_n   = exp(mean over the list's present pairs of log(pi_e / pi_b))   (geometric mean)
      rho_n     = min(c, ratio_n);   V = sum rho G / sum rho
    For user-level policies pass l = 1. CI: percentile bootstrap over units (seeded).
    Shapes: logged_action / box_center / eval_action [n, l, A], mask [n, l], returns [n].
    """
    del box_center  # the uniform density does not depend on the centre inside the box
    a = np.asarray(logged_action, np.float64)
    e = np.asarray(eval_action, np.float64)
    m = np.asarray(mask, np.float64)
    g = np.asarray(returns, np.float64)
    n, _, a_dim = a.shape
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    log_pe = _log_normal_pdf(a, e, sigma).sum(-1)  # [n, l]
    log_pb = -a_dim * math.log(2 * half_width)
    log_ratio = ((log_pe - log_pb) * m).sum(-1) / np.maximum(m.sum(-1), 1.0)  # [n]
    rho = np.minimum(c, np.exp(np.minimum(log_ratio, 50.0)))

    def estimate(ix: np.ndarray) -> float:
        w = rho[ix]
        return float((w * g[ix]).sum() / max(w.sum(), 1e-300))

    value = estimate(np.arange(n))
    rng = np.random.default_rng(seed)
    boots = np.array([estimate(rng.integers(0, n, n)) for _ in range(n_boot)])
    lo, hi = (np.percentile(boots, [2.5, 97.5]) if n_boot else (value, value))
    return value, float(lo), float(hi)


def _weighted_auc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """sum over (pos, neg) of w_p w_n ([s_p > s_n] + 0.5 [s_p = s_n]) / (W_pos W_neg)."""
    uniq, inv = np.unique(scores, return_inverse=True)
    pos_w = np.bincount(inv, weights * (labels > 0), len(uniq))
    neg_w = np.bincount(inv, weights * (labels <= 0), len(uniq))
    neg_below = np.cumsum(neg_w) - neg_w
    num = (pos_w * (neg_below + 0.5 * neg_w)).sum()
    return float(num / (pos_w.sum() * neg_w.sum()))


def mtf_gauc(user_ids: np.ndarray, scores: np.ndarray, labels: np.ndarray,
             weights: np.ndarray) -> float:
    """Per-user weighted AUC of the fused score (label = valid consumption, weight = 1 + r),
    averaged over users weighted by their exposure count; one-class users are skipped."""
    u = np.asarray(user_ids)
    s, y, w = (np.asarray(x, np.float64) for x in (scores, labels, weights))
    order = np.argsort(u, kind="stable")
    u, s, y, w = u[order], s[order], y[order], w[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    total, weight = 0.0, 0.0
    for a, b in zip(starts, ends):
        yy = y[a:b]
        if yy.min() == yy.max():
            continue
        total += (b - a) * _weighted_auc(s[a:b], yy, w[a:b])
        weight += b - a
    return total / weight if weight else float("nan")
