"""One simulated day: sessions of requests, served by a policy with box exploration.

Vectorized over sessions: the only Python loop runs over the request index t (<= 20),
with every still-active session of the day in one batch.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtf import schema as S
from mtf.fusion import log_fused_score
from sim import features as F
from sim.policies import Policy
from sim.world import World, sigmoid

L, A = S.LIST_LEN, S.ACTION_DIM


@dataclass
class DayLogs:
    raw_users: pd.DataFrame
    raw_items: pd.DataFrame
    raw_requests: pd.DataFrame
    raw_exposures: pd.DataFrame
    raw_feedback: pd.DataFrame
    pair_states: pd.DataFrame | None = None
    user_states: pd.DataFrame | None = None


def day_seed(seed: int, ds: str) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, int(ds.replace("-", ""))])


def _rows(a: np.ndarray) -> list[np.ndarray]:
    return list(np.ascontiguousarray(a, dtype=np.float32))


def sample_candidates(rng: np.random.Generator, cdf: np.ndarray, logw: np.ndarray, b: int,
                      n: int) -> np.ndarray:
    """[b, n] distinct items per row, popularity-weighted without replacement.

    Draw 3n with replacement (inverse CDF), drop repeats within a row, keep the first n
    distinct in draw order; rows with fewer than n distinct fall back to exact Gumbel top-n.
    """
    n_items = len(cdf)
    if 3 * n >= n_items:
        keys = logw[None, :] + rng.gumbel(size=(b, n_items))
        return np.argpartition(-keys, n - 1, axis=1)[:, :n]
    m = 3 * n
    draws = np.minimum(np.searchsorted(cdf, rng.random((b, m))), n_items - 1)
    order = np.argsort(draws, axis=1, kind="stable")
    sorted_d = np.take_along_axis(draws, order, 1)
    dup_sorted = np.zeros_like(sorted_d, dtype=bool)
    dup_sorted[:, 1:] = sorted_d[:, 1:] == sorted_d[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, 1)
    # first n distinct draws in draw order: sort by (dup, position)
    key = dup * m + np.arange(m)[None, :]
    pick = np.argsort(key, axis=1, kind="stable")[:, :n]
    out = np.take_along_axis(draws, pick, 1)
    short = (~dup).sum(1) < n
    if short.any():
        keys = logw[None, :] + rng.gumbel(size=(int(short.sum()), n_items))
        out[short] = np.argpartition(-keys, n - 1, axis=1)[:, :n]
    return out


def simulate_day(world: World, policy: Policy, ds: str, *, explore: bool = True,
                 return_states: bool = False, seed: int | None = None) -> DayLogs:
    """Simulate day `ds` (YYYY-MM-DD) served by `policy`; deterministic in (seed, ds)."""
    cfg = world.cfg
    rng = np.random.default_rng(day_seed(cfg.seed if seed is None else seed, ds))
    n_users = len(world.user_id)
    day0_ms = int(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.timezone.utc).timestamp()
                  * 1000)

    # --- sessions of the day -------------------------------------------------------
    n_sess = rng.poisson(cfg.sessions_per_user * (0.5 + world.activity))
    s_user = np.repeat(np.arange(n_users), n_sess)
    s_k = np.concatenate([np.arange(n) for n in n_sess]) if n_sess.sum() else np.zeros(0, int)
    n_s = len(s_user)
    start_hour = np.clip(world.pref_hour[s_user] + rng.integers(-2, 3, n_s), 6, 18)
    start_s = start_hour * 3600.0 + rng.uniform(0, 3600, n_s)
    device = np.where(rng.random(n_s) < 0.8, world.main_device[s_user],
                      rng.integers(0, S.NUM_DEVICES, n_s)).astype(np.int32)
    network = (rng.random(n_s) < 0.3).astype(np.int32)
    sat = 0.5 + 1.5 * world.activity[s_user] + rng.normal(0, 0.3, n_s)
    session_id = np.array([f"{ds}-u{u}-s{k}" for u, k in zip(world.user_id[s_user], s_k)],
                          dtype=object)

    clock = start_s.copy()
    watch_before = np.zeros(n_s)
    valid_before = np.zeros(n_s)
    active = np.ones(n_s, dtype=bool)
    req_parts, exp_parts, state_parts = [], [], []
    h = cfg.explore_half_width if explore else 0.0
    pop_logw = np.log(world.popularity + 1e-3)
    pop_cdf = np.cumsum(world.popularity + 1e-3)
    pop_cdf /= pop_cdf[-1]
    n_cand = min(cfg.n_candidates, len(world.item_id))

    for t in range(cfg.max_requests):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        b = idx.size
        users = s_user[idx]
        hour = (clock[idx] // 3600).astype(np.int32)
        cands = sample_candidates(rng, pop_cdf, pop_logw, b, n_cand)
        truth = world.true_probs(users, cands)
        preds = world.mtl_predictions(truth, cands, device[idx], hour, rng)
        c_rank, c_z, c_mean, c_std = F.candidate_stats(preds)
        ublk = F.user_block(world.age_bucket[users], world.gender[users], world.region[users],
                            world.activity[users], world.interest[users], hour, device[idx],
                            network[idx], np.full(b, t), watch_before[idx], valid_before[idx])
        pstate = F.pair_state(ublk, world.item_features[cands], preds, c_rank, c_z)
        ustate = F.user_state(ublk, c_mean, c_std)
        mu = np.asarray(policy.act(ustate, pstate), dtype=np.float64)
        pair_level = mu.ndim == 3
        noise_shape = (b, n_cand, A) if (cfg.explore_per_candidate or pair_level) and \
            cfg.explore_per_candidate else (b, A)
        eps = rng.uniform(-h, h, noise_shape) if explore else np.zeros(noise_shape)
        mu_pairs = mu if pair_level else np.broadcast_to(mu[:, None, :], (b, n_cand, A))
        eps_pairs = eps if eps.ndim == 3 else np.broadcast_to(eps[:, None, :], (b, n_cand, A))
        act_pairs = np.clip(mu_pairs + eps_pairs, -1.0, 1.0)
        score = log_fused_score(preds, act_pairs)  # [B, N]
        top = np.argsort(-score, axis=1, kind="stable")[:, :L]  # [B, L] candidate slots
        items = np.take_along_axis(cands, top, 1)
        take = lambda x: np.take_along_axis(x, top[..., None] if x.ndim == 3 else top, 1)  # noqa
        # behaviours from the TRUE model
        dur = world.duration_s[items]
        u = rng.random((b, L))
        z = cfg.watch_noise * (np.log(u + 1e-12) - np.log1p(-u + 1e-12))
        frac = np.clip(take(truth["frac"]) + z, 0.0, 1.0)
        watch = dur * frac
        valid = watch > S.VALID_WATCH_SECONDS
        finish = frac >= 0.95
        skip = watch < 3.0
        damp = np.where(valid, 1.0, 0.1)
        like = rng.random((b, L)) < take(truth["like"]) * damp
        share = rng.random((b, L)) < take(truth["share"]) * damp
        collect = rng.random((b, L)) < take(truth["collect"]) * damp
        # satisfaction and exit
        sat[idx] = (cfg.sat_decay * sat[idx] + cfg.sat_valid * valid.sum(1)
                    + cfg.sat_interact * (like.sum(1) + share.sum(1) + collect.sum(1))
                    - cfg.sat_skip * skip.sum(1) - cfg.sat_fatigue)
        leave = (rng.random(b) > sigmoid(sat[idx])) | (t == cfg.max_requests - 1)
        ts_ms = day0_ms + np.round(clock[idx] * 1000).astype(np.int64)
        act_exp, mu_exp = take(act_pairs), take(mu_pairs)
        req_parts.append(dict(
            sess=idx, t=np.full(b, t, np.int32), ts_ms=ts_ms, hour=hour,
            action=act_exp.mean(1), mu_bp=mu_exp.mean(1),
            noise=eps if eps.ndim == 2 else take(eps).mean(1),
            c_mean=c_mean, c_std=c_std, leave=leave))
        exp_parts.append(dict(
            sess=np.repeat(idx, L), t=np.full(b * L, t, np.int32),
            item=items.reshape(-1), pos=np.tile(np.arange(L, dtype=np.int32), b),
            preds=take(preds).reshape(-1, S.NUM_HEADS),
            rank=take(c_rank).reshape(-1, S.NUM_HEADS), z=take(c_z).reshape(-1, S.NUM_HEADS),
            action=act_exp.reshape(-1, A), mu=mu_exp.reshape(-1, A),
            watch=watch.reshape(-1), valid=valid.reshape(-1), finish=finish.reshape(-1),
            like=like.reshape(-1), share=share.reshape(-1), collect=collect.reshape(-1),
            skip=skip.reshape(-1), leave=np.repeat(leave, L)))
        if return_states:
            state_parts.append(dict(sess=idx, t=t, pair=take(pstate), user=ustate))
        # advance the session clock: watching time + 5 s per request
        clock[idx] += watch.sum(1) + 5.0
        watch_before[idx] += watch.sum(1)
        valid_before[idx] += valid.sum(1)
        active[idx[leave]] = False

    return _assemble(world, ds, policy, session_id, s_user, device, network, h, n_cand,
                     req_parts, exp_parts, state_parts if return_states else None)


def _cat(parts: list[dict], key: str) -> np.ndarray:
    return np.concatenate([p[key] for p in parts]) if parts else np.zeros(0)


def _assemble(world, ds, policy, session_id, s_user, device, network, h, n_cand, req_parts,
              exp_parts, state_parts) -> DayLogs:
    users = pd.DataFrame({
        "ds": ds, "user_id": world.user_id, "age_bucket": world.age_bucket,
        "gender": world.gender, "region": world.region, "activity": world.activity,
        "interest": _rows(world.interest)})
    items = pd.DataFrame({
        "ds": ds, "item_id": world.item_id, "category": world.category,
        "author_id": world.author_id, "duration_s": world.duration_s,
        "item_vec": _rows(world.item_vec), "popularity": world.popularity})
    sess = _cat(req_parts, "sess").astype(np.int64)
    t = _cat(req_parts, "t").astype(np.int32)
    req_id = np.array([f"{s}-r{i:02d}" for s, i in zip(session_id[sess], t)], dtype=object)
    requests = pd.DataFrame({
        "ds": ds, "request_id": req_id, "session_id": session_id[sess],
        "user_id": world.user_id[s_user[sess]], "request_index": t,
        "ts_ms": _cat(req_parts, "ts_ms").astype(np.int64),
        "hour": _cat(req_parts, "hour").astype(np.int32),
        "device": device[sess], "network": network[sess],
        "policy_version": policy.version,
        "action": _rows(np.concatenate([p["action"] for p in req_parts])),
        "mu_bp": _rows(np.concatenate([p["mu_bp"] for p in req_parts])),
        "noise": _rows(np.concatenate([p["noise"] for p in req_parts])),
        "explore_half_width": float(h), "n_candidates": np.int32(n_cand),
        "cand_pred_mean": _rows(np.concatenate([p["c_mean"] for p in req_parts])),
        "cand_pred_std": _rows(np.concatenate([p["c_std"] for p in req_parts]))})
    requests = requests.sort_values(["session_id", "request_index"], kind="stable")
    esess = _cat(exp_parts, "sess").astype(np.int64)
    et = _cat(exp_parts, "t").astype(np.int32)
    exp_req = np.array([f"{s}-r{i:02d}" for s, i in zip(session_id[esess], et)], dtype=object)
    item = _cat(exp_parts, "item").astype(np.int64)
    exposures = pd.DataFrame({
        "ds": ds, "request_id": exp_req, "item_id": item,
        "position": _cat(exp_parts, "pos").astype(np.int32),
        "preds": _rows(np.concatenate([p["preds"] for p in exp_parts])),
        "cand_rank": _rows(np.concatenate([p["rank"] for p in exp_parts])),
        "cand_z": _rows(np.concatenate([p["z"] for p in exp_parts])),
        "action": _rows(np.concatenate([p["action"] for p in exp_parts])),
        "mu_bp": _rows(np.concatenate([p["mu"] for p in exp_parts]))})
    i32 = lambda k: _cat(exp_parts, k).astype(np.int32)  # noqa: E731
    feedback = pd.DataFrame({
        "ds": ds, "request_id": exp_req, "item_id": item,
        "watch_time_s": _cat(exp_parts, "watch").astype(np.float64),
        "valid": i32("valid"), "finish": i32("finish"), "like": i32("like"),
        "share": i32("share"), "collect": i32("collect"), "skip": i32("skip"),
        "exit_after_request": i32("leave")})
    logs = DayLogs(users, items, requests.reset_index(drop=True), exposures, feedback)
    if state_parts is not None:
        rid = lambda p: [f"{s}-r{p['t']:02d}" for s in session_id[p["sess"]]]  # noqa: E731
        logs.pair_states = pd.DataFrame({
            "request_id": np.concatenate([np.repeat(rid(p), L) for p in state_parts]),
            "position": np.concatenate([np.tile(np.arange(L), len(p["sess"]))
                                        for p in state_parts]),
            "pair_state": _rows(np.concatenate([p["pair"].reshape(-1, S.PAIR_STATE_DIM)
                                                for p in state_parts]))})
        logs.user_states = pd.DataFrame({
            "request_id": np.concatenate([rid(p) for p in state_parts]),
            "user_state": _rows(np.concatenate([p["user"] for p in state_parts]))})
    return logs


def evaluate_policy(cfg, policy: Policy, *, seed: int, n_users: int | None = None,
                    ds: str = "2000-01-01") -> dict[str, float]:
    """Ground-truth "online A/B": a fresh population (users from `seed`, same catalogue and
    MTL model), one day without exploration. Same seed -> same users and session starts
    for every policy (common random numbers)."""
    world = World.build(cfg, user_seed=seed, n_users=n_users)
    logs = simulate_day(world, policy, ds, explore=False, seed=seed)
    fb, n = logs.raw_feedback, len(world.user_id)
    return {"uvc": float(fb["valid"].sum()) / n, "udt": float(fb["watch_time_s"].sum()) / n,
            "sessions": float(logs.raw_requests["session_id"].nunique()),
            "requests": float(len(logs.raw_requests)), "users": float(n)}
