"""Serving-time state features (numpy), exactly the layout documented in core/schema.py.

The Spark job `jobs/build_enhanced_state.py` rebuilds the same vectors from the logged
columns (tests/spark/test_state_parity.py checks they agree), so every input here is a logged
column: profile columns of raw_users, item columns of raw_items, context of raw_requests,
preds / cand_rank / cand_z of raw_exposures and cand_pred_mean / std of raw_requests.
Values are computed in float64 from the logged values and cast to float32 once.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from core import schema as S

STD_FLOOR = S.CAND_STD_FLOOR
Z_CLIP = S.CAND_Z_CLIP


def _f64(x: ArrayLike) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _one_hot(x: ArrayLike, n: int) -> np.ndarray:
    x = np.asarray(x)
    return (x[..., None] == np.arange(n)).astype(np.float64)


def user_block(age_bucket: ArrayLike, gender: ArrayLike, region: ArrayLike,
               activity: ArrayLike, interest: ArrayLike, hour: ArrayLike, device: ArrayLike,
               network: ArrayLike, request_index: ArrayLike, session_watch_before_s: ArrayLike,
               session_valid_before: ArrayLike) -> np.ndarray:
    """User block [..., D_USER] float32 (shared by every pair of a request).

    Scalars per row have shape [...]; interest is [..., INTEREST_DIM]; request_index is
    0-based; the session stats are totals over the session's earlier requests.
    """
    hour = _f64(hour)
    out = np.concatenate([
        np.stack([_f64(age_bucket) / (S.NUM_AGE_BUCKETS - 1), _f64(gender),
                  _f64(region) / (S.NUM_REGIONS - 1), _f64(activity)], -1),
        _f64(interest),
        np.stack([np.sin(2.0 * np.pi * hour / 24.0), np.cos(2.0 * np.pi * hour / 24.0)], -1),
        _one_hot(device, S.NUM_DEVICES),
        np.stack([_f64(network), _f64(request_index) / S.MAX_REQUESTS_PER_SESSION,
                  np.log1p(_f64(session_watch_before_s)) / S.SESSION_WATCH_LOG_SCALE,
                  _f64(session_valid_before) / S.SESSION_VALID_SCALE], -1),
    ], -1).astype(np.float32)
    assert out.shape[-1] == S.D_USER, out.shape
    return out


def item_block(item_vec: ArrayLike, duration_s: ArrayLike, popularity: ArrayLike,
               category: ArrayLike) -> np.ndarray:
    """Item block [..., D_ITEM] float32: item_vec, log1p(duration)/5, popularity, one-hot."""
    out = np.concatenate([
        _f64(item_vec),
        np.stack([np.log1p(_f64(duration_s)) / S.DURATION_LOG_SCALE, _f64(popularity)], -1),
        _one_hot(category, S.NUM_CATEGORIES),
    ], -1).astype(np.float32)
    assert out.shape[-1] == S.D_ITEM, out.shape
    return out


def candidate_stats(preds: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """preds [B, N, K] -> (cand_rank [B, N, K], cand_z [B, N, K], mean [B, K], std [B, K]).

    cand_rank: 0 = the highest prediction of the head among the request's N candidates
    (ties broken by candidate order: stable argsort of -pred), divided by N - 1.
    cand_z: (pred - mean) / std with the population std (ddof 0, floored at 1e-6),
    clipped to [-3, 3], divided by 3. mean and std are the ones used for z. All float32.
    """
    p = np.asarray(preds, dtype=np.float32)
    assert p.ndim == 3, p.shape
    b, n, k = p.shape
    pt = np.ascontiguousarray(np.swapaxes(-p, 1, 2)).reshape(b * k, n)  # [B*K, N]
    order = np.argsort(pt, axis=1, kind="stable")  # candidate at each rank
    rank = np.empty((b * k, n), dtype=np.float64)
    rank[np.arange(b * k)[:, None], order] = np.arange(n)[None, :] / max(n - 1, 1)
    cand_rank = np.swapaxes(rank.reshape(b, k, n), 1, 2).astype(np.float32)
    p64 = p.astype(np.float64)
    mean = p64.mean(axis=1)  # [B, K]
    std = np.maximum(p64.std(axis=1), STD_FLOOR)  # [B, K]
    z = np.clip((p64 - mean[:, None, :]) / std[:, None, :], -Z_CLIP, Z_CLIP) / Z_CLIP
    return cand_rank, z.astype(np.float32), mean.astype(np.float32), std.astype(np.float32)


def pair_state(user_blk: ArrayLike, item_blk: ArrayLike, preds: ArrayLike, cand_rank: ArrayLike,
               cand_z: ArrayLike) -> np.ndarray:
    """[B, N, PAIR_STATE_DIM] float32: user block (broadcast), item, preds, rank, z."""
    u = np.asarray(user_blk, np.float32)
    p = np.asarray(preds, np.float32)
    b, n = p.shape[:2]
    out = np.concatenate([
        np.broadcast_to(u[:, None, :], (b, n, S.D_USER)), np.asarray(item_blk, np.float32), p,
        np.asarray(cand_rank, np.float32), np.asarray(cand_z, np.float32)], -1)
    assert out.shape == (b, n, S.PAIR_STATE_DIM), out.shape
    return out


def user_state(user_blk: ArrayLike, mean: ArrayLike, std: ArrayLike) -> np.ndarray:
    """[B, USER_STATE_DIM] float32: user block, then the candidates' per-head mean and std."""
    out = np.concatenate([np.asarray(user_blk, np.float32), np.asarray(mean, np.float32),
                          np.asarray(std, np.float32)], -1)
    assert out.shape[-1] == S.USER_STATE_DIM, out.shape
    return out
