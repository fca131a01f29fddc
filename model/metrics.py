"""Offline evaluation metrics (docs/ALGORITHM.md section 7), numpy only.

- `discounted_returns`: per-session return G from the session's first logged request;
- `ncis`: normalised capped importance sampling estimate of the cumulative reward, with a
  percentile bootstrap CI over sessions;
- `mtf_gauc`: per-user weighted AUC of a fused score, users weighted by exposure count.
"""

from __future__ import annotations

import math

import numpy as np

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_EDGE_TOL = 1e-6
"""A logged coordinate within this of +-1 counts as clipped to the edge."""
_BOX_TOL = 1e-4
"""Slack for a logged action to count as inside its box (float32 storage)."""


def discounted_returns(session_ids: np.ndarray, request_index: np.ndarray,
                       list_reward: np.ndarray, gamma: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """G_s = sum_t gamma^(t - t0_s) r_t over the requests t of session s, t0_s = the
    session's first logged request index (docs/ALGORITHM.md section 2).

    session_ids, request_index, list_reward: [N] (any order, one row per request).
    Returns (sessions sorted [n_sessions], returns aligned with them [n_sessions]).
    A (session, request_index) pair logged twice raises ValueError.
    """
    sess = np.asarray(session_ids)
    idx = np.asarray(request_index, dtype=np.int64)
    r = np.asarray(list_reward, dtype=np.float64)
    if not sess.shape == idx.shape == r.shape or sess.ndim != 1:
        raise ValueError(f"shapes differ: {sess.shape}, {idx.shape}, {r.shape}")
    uniq, inv = np.unique(sess, return_inverse=True)
    order = np.lexsort((idx, inv))
    dup = (inv[order][1:] == inv[order][:-1]) & (idx[order][1:] == idx[order][:-1])
    if dup.any():
        raise ValueError(f"{int(dup.sum())} duplicated (session, request_index) rows")
    first = np.full(len(uniq), np.iinfo(np.int64).max)
    np.minimum.at(first, inv, idx)
    g = np.zeros(len(uniq))
    np.add.at(g, inv, r * gamma ** (idx - first[inv]).astype(np.float64))
    return uniq, g


def _log_ndtr(x: np.ndarray) -> np.ndarray:
    """log Phi(x), the standard normal CDF, stable far into the lower tail.

    erfc for x >= -37 (Phi(-37) ~ 1e-300 is still a normal double), else the asymptotic
    series log Phi(x) ~ -x^2/2 - log(-x) - log sqrt(2 pi) + log(1 - 1/x^2 + 3/x^4).
    """
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    near = x >= -37.0
    erfc = np.frompyfunc(math.erfc, 1, 1)
    out[near] = np.log(0.5 * erfc(-x[near] / math.sqrt(2.0)).astype(np.float64))
    xf = x[~near]
    out[~near] = (-0.5 * xf**2 - np.log(-xf) - _LOG_SQRT_2PI
                  + np.log1p(-1.0 / xf**2 + 3.0 / xf**4))
    return out


def pair_log_ratio(logged_action: np.ndarray, box_center: np.ndarray,
                   eval_action: np.ndarray, half_width: float,
                   sigma: float | np.ndarray) -> np.ndarray:
    """log pi_e(a|s) - log pi_b(a|s) per pair, summed over the A action dims. [..., A] -> [...]

    pi_b (logging): a = clip(c + eps, -1, 1), eps ~ U(-h, h)^A (sim/simulator.py).
    pi_e (evaluated): a = clip(mu_e(s) + z, -1, 1), z ~ N(0, sigma^2)^A (Gaussian kernel).
    Clipping makes both distributions mixed: a density inside (-1, 1) and a point mass at
    an edge that a box crosses. Per dim k, w.r.t. that common base measure:
      - inside: pi_b = 1 / (2h),                      pi_e = N(a_k; mu_k, sigma);
      - a_k clipped to +1 (box crosses +1): pi_b = (c_k + h - 1) / (2h),
                                            pi_e = P(mu_k + z >= 1) = Phi((mu_k - 1) / sigma);
      - a_k clipped to -1 (box crosses -1): pi_b = (-1 - (c_k - h)) / (2h),
                                            pi_e = Phi((-1 - mu_k) / sigma).
    The log ratio is computed in the log domain (no density under/overflow).
    """
    a = np.asarray(logged_action, np.float64)
    c = np.asarray(box_center, np.float64)
    e = np.asarray(eval_action, np.float64)
    sig = np.broadcast_to(np.asarray(sigma, np.float64), a.shape)
    h = float(half_width)
    lo, hi = c - h, c + h
    log_2h = math.log(2.0 * h)
    at_hi = (a >= 1.0 - _EDGE_TOL) & (hi > 1.0)
    at_lo = (a <= -1.0 + _EDGE_TOL) & (lo < -1.0)
    # interior: Gaussian density over the uniform density
    out = -0.5 * ((a - e) / sig) ** 2 - np.log(sig) - _LOG_SQRT_2PI + log_2h
    if at_hi.any():
        out[at_hi] = (_log_ndtr((e[at_hi] - 1.0) / sig[at_hi])
                      - np.log(hi[at_hi] - 1.0) + log_2h)
    if at_lo.any():
        out[at_lo] = (_log_ndtr((-1.0 - e[at_lo]) / sig[at_lo])
                      - np.log(-1.0 - lo[at_lo]) + log_2h)
    return out.sum(-1)


def ncis(logged_action: np.ndarray, box_center: np.ndarray, mask: np.ndarray,
         eval_action: np.ndarray, returns: np.ndarray, half_width: float,
         sigma: float | np.ndarray, c: float = 10.0, n_boot: int = 200, seed: int = 0,
         ci: float = 0.95) -> tuple[float, float, float]:
    """Normalised capped importance sampling estimate of the cumulative reward
    (docs/ALGORITHM.md section 7), with a percentile bootstrap CI over units.

    Units n are held-out sessions, each represented by its first request's list of l pairs
    (pass l = 1 for a user-level policy):
        log ratio_n = mean over the present pairs k of log(pi_e(a_nk) / pi_b(a_nk))
                      (the geometric mean of the l per-pair ratios; `pair_log_ratio`, which
                      also documents the treatment of actions clipped at +-1)
        rho_n       = min(c, ratio_n)
        V           = sum_n rho_n G_n / sum_n rho_n
    All in the log domain: the weights are exp(log rho - max log rho), which cancels in V,
    so V stays defined when every ratio underflows.

    logged_action / box_center / eval_action [n, l, A], mask [n, l], returns [n];
    sigma: float or [A]. A present logged action outside its box (beyond a 1e-4 slack) has
    pi_b = 0 and raises ValueError, as does a unit with no present pair.
    Returns (V, ci_low, ci_high); the CI is NaN when n_boot = 0.
    """
    a = np.asarray(logged_action, np.float64)
    ctr = np.asarray(box_center, np.float64)
    e = np.asarray(eval_action, np.float64)
    m = np.asarray(mask, np.float64)
    g = np.asarray(returns, np.float64)
    if a.ndim != 3 or ctr.shape != a.shape or e.shape != a.shape or m.shape != a.shape[:2] \
            or g.shape != a.shape[:1]:
        raise ValueError(f"shapes: logged {a.shape}, center {ctr.shape}, eval {e.shape}, "
                         f"mask {m.shape}, returns {g.shape}")
    if half_width <= 0 or np.any(np.asarray(sigma) <= 0) or c <= 0:
        raise ValueError("half_width, sigma and c must be > 0")
    n = a.shape[0]
    nan = float("nan")
    if n == 0:
        return nan, nan, nan
    present = m > 0  # [n, l]
    n_present = present.sum(-1)  # [n]
    if (n_present == 0).any():
        raise ValueError(f"{int((n_present == 0).sum())} units have no present pair")
    h = float(half_width)
    outside = ((a < np.maximum(ctr - h, -1.0) - _BOX_TOL)
               | (a > np.minimum(ctr + h, 1.0) + _BOX_TOL)).any(-1) & present
    if outside.any():
        raise ValueError(f"{int(outside.sum())} logged actions lie outside their box "
                         f"(half width {h}): pi_b = 0, not data of this logging policy")

    log_ratio_pair = pair_log_ratio(a, ctr, e, h, sigma)  # [n, l]
    log_ratio = np.where(present, log_ratio_pair, 0.0).sum(-1) / n_present  # [n]
    log_rho = np.minimum(log_ratio, math.log(c))  # [n]

    def weighted_mean(lr: np.ndarray, gg: np.ndarray) -> np.ndarray:
        # rows of (log rho, G) -> sum rho G / sum rho per row, shifted by the row max
        w = np.exp(lr - lr.max(-1, keepdims=True))
        return (w * gg).sum(-1) / w.sum(-1)

    value = float(weighted_mean(log_rho, g))
    if n_boot <= 0:
        return value, nan, nan
    rng = np.random.default_rng(seed)
    rows = max(1, 4_000_000 // n)  # bound memory: rows x n resampled units per chunk
    boots = []
    for start in range(0, n_boot, rows):
        ix = rng.integers(0, n, size=(min(rows, n_boot - start), n))  # [rows, n]
        boots.append(weighted_mean(log_rho[ix], g[ix]))
    alpha = 100.0 * (1.0 - ci) / 2.0
    lo, hi = np.percentile(np.concatenate(boots), [alpha, 100.0 - alpha])
    return value, float(lo), float(hi)


def mtf_gauc(user_ids: np.ndarray, scores: np.ndarray, labels: np.ndarray,
             weights: np.ndarray) -> float:
    """MTF-GAUC (docs/ALGORITHM.md section 7): per user u, the weighted AUC

        AUC_u = sum_{p pos, q neg} w_p w_q ([s_p > s_q] + 0.5 [s_p = s_q]) / (W_pos,u W_neg,u)

    then GAUC = sum_u n_u AUC_u / sum_u n_u over users with both classes (n_u = exposures
    of u; one-class users are skipped). Labels: > 0 is positive (valid consumption);
    weights: 1 + r in the project. Vectorized: one lexsort by (user, score), tie groups,
    per-user cumulative negative weight. Returns NaN if no user has both classes.

    user_ids, scores, labels, weights: [M].
    """
    u = np.asarray(user_ids)
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels, np.float64) > 0
    w = np.asarray(weights, np.float64)
    if not u.shape == s.shape == y.shape == w.shape or u.ndim != 1:
        raise ValueError(f"shapes differ: {u.shape}, {s.shape}, {y.shape}, {w.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if (w < 0).any():
        raise ValueError("weights must be >= 0")
    if u.size == 0:
        return float("nan")
    _, uid = np.unique(u, return_inverse=True)
    order = np.lexsort((s, uid))  # by user, then score ascending
    uid, s, y, w = uid[order], s[order], y[order], w[order]
    # tie groups: runs of equal (user, score)
    new_group = np.r_[True, (uid[1:] != uid[:-1]) | (s[1:] != s[:-1])]
    gid = np.cumsum(new_group) - 1
    g_user = uid[new_group]  # [G]
    pos_w = np.bincount(gid, weights=w * y)  # [G]
    neg_w = np.bincount(gid, weights=w * ~y)
    # negative weight strictly below each group, within its user
    n_users = int(uid.max()) + 1
    cum_neg = np.cumsum(neg_w)  # [G]
    first = np.flatnonzero(np.r_[True, g_user[1:] != g_user[:-1]])  # [U] 1st group of user
    user_start = cum_neg[first] - neg_w[first]  # cum_neg before the user's first group
    neg_below = cum_neg - neg_w - user_start[g_user]
    user_neg = np.bincount(g_user, weights=neg_w, minlength=n_users)
    num = np.bincount(g_user, weights=pos_w * (neg_below + 0.5 * neg_w), minlength=n_users)
    user_pos = np.bincount(g_user, weights=pos_w, minlength=n_users)
    n_pos = np.bincount(uid, weights=y.astype(np.float64), minlength=n_users)
    n_u = np.bincount(uid, minlength=n_users).astype(np.float64)
    both = (n_pos > 0) & (n_pos < n_u) & (user_pos > 0) & (user_neg > 0)
    if not both.any():
        return float("nan")
    auc = num[both] / (user_pos[both] * user_neg[both])
    return float((n_u[both] * auc).sum() / n_u[both].sum())
