"""Serving-time state features (numpy), exactly the layout of mtf/schema.py.

The Spark job `build_enhanced_state` rebuilds the same vectors from the logged columns;
tests/test_state_parity.py checks they agree.
"""

from __future__ import annotations

import numpy as np

from mtf import schema as S


def user_block(age_bucket, gender, region, activity, interest, hour, device, network,
               request_index, session_watch_before_s, session_valid_before) -> np.ndarray:
    """[..., D_USER] float32."""
    f64 = lambda x: np.asarray(x, dtype=np.float64)
    hour = f64(hour)
    dev = np.asarray(device)
    cols = [
        f64(age_bucket) / (S.NUM_AGE_BUCKETS - 1), f64(gender), f64(region) / (S.NUM_REGIONS - 1),
        f64(activity),
    ]
    parts = [np.stack(cols, -1), f64(interest),
             np.stack([np.sin(2 * np.pi * hour / 24.0), np.cos(2 * np.pi * hour / 24.0)], -1),
             np.stack([(dev == i).astype(np.float64) for i in range(S.NUM_DEVICES)], -1),
             np.stack([f64(network), f64(request_index) / S.MAX_REQUESTS_PER_SESSION,
                       np.log1p(f64(session_watch_before_s)) / 6.0,
                       f64(session_valid_before) / 10.0], -1)]
    out = np.concatenate(parts, -1).astype(np.float32)
    assert out.shape[-1] == S.D_USER, out.shape
    return out


def item_block(item_vec, duration_s, popularity, category) -> np.ndarray:
    """[..., D_ITEM] float32."""
    cat = np.asarray(category)
    out = np.concatenate([
        np.asarray(item_vec, dtype=np.float64),
        np.stack([np.log1p(np.asarray(duration_s, np.float64)) / 5.0,
                  np.asarray(popularity, np.float64)], -1),
        np.stack([(cat == i).astype(np.float64) for i in range(S.NUM_CATEGORIES)], -1),
    ], -1).astype(np.float32)
    assert out.shape[-1] == S.D_ITEM, out.shape
    return out


def candidate_stats(preds: np.ndarray):
    """preds [B, N, K] -> (cand_rank, cand_z [B, N, K], mean, std [B, K]), float32.

    rank 0 = highest prediction in the request's candidate set (ties by candidate order),
    divided by N - 1; z = (pred - mean) / std (ddof 0, floor 1e-6), clipped to [-3, 3], / 3.
    """
    p = np.asarray(preds, dtype=np.float32)
    b, n, k = p.shape
    order = np.argsort(-p, axis=1, kind="stable")  # [B, N, K] candidate index by rank
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[None, :, None].repeat(b, 0).repeat(k, 2), 1)
    cand_rank = (rank / max(n - 1, 1)).astype(np.float32)
    mean = p.astype(np.float64).mean(axis=1)
    std = np.maximum(p.astype(np.float64).std(axis=1), 1e-6)
    z = np.clip((p - mean[:, None, :]) / std[:, None, :], -3.0, 3.0) / 3.0
    return cand_rank, z.astype(np.float32), mean.astype(np.float32), std.astype(np.float32)


def pair_state(user_blk, item_blk, preds, cand_rank, cand_z) -> np.ndarray:
    """[B, N, PAIR_STATE_DIM] float32: user, item, preds, cand_rank, cand_z."""
    b, n = np.asarray(preds).shape[:2]
    out = np.concatenate([
        np.broadcast_to(np.asarray(user_blk, np.float32)[:, None, :], (b, n, S.D_USER)),
        np.asarray(item_blk, np.float32), np.asarray(preds, np.float32),
        np.asarray(cand_rank, np.float32), np.asarray(cand_z, np.float32)], -1)
    assert out.shape[-1] == S.PAIR_STATE_DIM, out.shape
    return out


def user_state(user_blk, mean, std) -> np.ndarray:
    """[B, USER_STATE_DIM] float32: user block, mean and std of the candidates' predictions."""
    out = np.concatenate([np.asarray(user_blk, np.float32), np.asarray(mean, np.float32),
                          np.asarray(std, np.float32)], -1)
    assert out.shape[-1] == S.USER_STATE_DIM, out.shape
    return out
