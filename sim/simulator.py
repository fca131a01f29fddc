"""One simulated day: sessions of requests served by a policy with box exploration.

For each request t of a session: N candidates (popularity-weighted, no repeats), their MTL
predictions, the serving state, `mu = policy.act(...)` (the box centre), the logged action
`a = clip(mu + eps, -1, 1)` with `eps ~ U(-h, h)^10` (docs/ALGORITHM.md section 4), the fused
log score of every candidate, the top-l exposed, behaviour sampled from the TRUE model,
satisfaction and exit (sim/world.py).

Vectorized over sessions: the only Python loop runs over the request index t (<= 20), with
every still-active session of a chunk of `cfg.session_chunk` sessions in one batch.

Randomness. The day's sessions (who, when, device, network, initial satisfaction) come
from a numpy Generator seeded by SeedSequence([seed, yyyymmdd]). Everything drawn inside a
session (candidates, MTL noise, exploration, behaviour, exit) comes from counter-based
streams: uniform = hash(day key, session, request index, stream, slot). So the output
does not depend on the batching, and two policies served on the same day see the same
sessions with the same random numbers at the same (session, request) -- common random
numbers, so that an A/B difference is due to the policies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import schema as S
from core.fusion import log_fused_score
from core.policy import Policy
from sim import features as F
from sim.config import SimConfig
from sim.world import RETRIEVAL_FLOOR, World, sigmoid

L, A, K = S.LIST_LEN, S.ACTION_DIM, S.NUM_HEADS
DAY_S = 86_400
EVAL_DS = "2000-01-01"
"""The (fictitious) day simulated by `evaluate_policy`."""
CELLULAR_SHARE = 0.3
"""Share of sessions on a cellular network."""
MAIN_DEVICE_SHARE = 0.8
"""Share of a user's sessions on their main device."""
START_JITTER_S = 3600.0
"""Std of the session start around the user's preferred hour."""


@dataclass(frozen=True)
class Arms:
    """Policies serving one day side by side (the online A/B, core/ab.py): the users whose
    `of_user` is j (an index per world user) are served by `policies[j]`, logged with the
    arm `names[j]` and that policy's version."""

    names: tuple[str, ...]
    policies: tuple[Policy, ...]
    of_user: np.ndarray

    def __post_init__(self) -> None:
        if not self.policies or len(self.names) != len(self.policies):
            raise ValueError(f"arms {self.names} need one policy each")
        for p in self.policies:
            if p.level not in ("fixed", "user", "pair"):
                raise ValueError(f"unknown policy level {p.level!r}")
        idx = np.asarray(self.of_user)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.names)):
            raise ValueError(f"arm index out of range 0..{len(self.names) - 1}")

    @classmethod
    def single(cls, world: World, policy: Policy, name: str = "current") -> Arms:
        """Everybody served by `policy`."""
        return cls((name,), (policy,), np.zeros(len(world.user_id), dtype=np.int64))

    @classmethod
    def split(cls, world: World, arms: Sequence[tuple[str, Policy]], of_user: np.ndarray
              ) -> Arms:
        if len(of_user) != len(world.user_id):
            raise ValueError(f"of_user has {len(of_user)} entries for "
                             f"{len(world.user_id)} users")
        return cls(tuple(a for a, _ in arms), tuple(p for _, p in arms),
                   np.asarray(of_user, dtype=np.int64))

    @property
    def pair_level(self) -> bool:
        return any(p.level == "pair" for p in self.policies)


def _as_arms(world: World, policy: Policy | Arms) -> Arms:
    return policy if isinstance(policy, Arms) else Arms.single(world, policy)


@dataclass
class DayLogs:
    """The day's bronze tables (pandas), plus the served states when asked for."""

    raw_users: pd.DataFrame
    raw_items: pd.DataFrame
    raw_requests: pd.DataFrame
    raw_exposures: pd.DataFrame
    raw_feedback: pd.DataFrame
    raw_candidates: pd.DataFrame | None = None
    """The top K (cfg.logged_candidates) candidates of every request by logged fused score;
    None when K is 0."""
    pair_states: pd.DataFrame | None = None
    """request_id, position, pair_state float32[PAIR_STATE_DIM] of the exposed pairs."""
    cand_states: pd.DataFrame | None = None
    """request_id, cand_index, pair_state float32[PAIR_STATE_DIM] of the logged candidates."""
    user_states: pd.DataFrame | None = None
    """request_id, user_state float32[USER_STATE_DIM]."""


def day_seed(seed: int, ds: str) -> np.random.SeedSequence:
    """The day's root seed: SeedSequence([seed, yyyymmdd])."""
    return np.random.SeedSequence([int(seed), int(ds.replace("-", ""))])


def day_start_ms(ds: str) -> int:
    """Epoch milliseconds of ds 00:00 UTC."""
    return int(dt.datetime.fromisoformat(ds).replace(tzinfo=dt.UTC).timestamp()) * 1000


# --- counter-based random streams ------------------------------------------------------
_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_U64 = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on a uint64 array (a bijection; wraps modulo 2^64)."""
    x = x + _U64(_GOLDEN)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


class Streams:
    """uniform(session, request index, stream, slot) in (0, 1), vectorized over sessions."""

    CANDIDATES, GUMBEL, MTL_NOISE, EXPLORE, WATCH, INTERACT, EXIT = range(7)

    def __init__(self, key: int):
        self.key = _U64(key & _MASK)

    def uniform(self, sess: np.ndarray, t: int, stream: int, shape: tuple[int, ...]
                ) -> np.ndarray:
        """sess [B] (session numbers) -> float64 [B, *shape], strictly inside (0, 1)."""
        m = int(np.prod(shape, dtype=np.int64))
        salt = _U64(((t * 256 + stream + 1) * _GOLDEN) & _MASK)
        h = _mix(_mix(np.asarray(sess, np.int64).astype(np.uint64) ^ self.key) ^ salt)  # [B]
        bits = _mix(h[:, None] + np.arange(m, dtype=np.uint64)[None, :] * _U64(_GOLDEN))
        u = ((bits >> _U64(11)).astype(np.float64) + 0.5) * 2.0 ** -53
        return u.reshape(len(h), *shape)

    def logistic(self, sess: np.ndarray, t: int, stream: int, shape: tuple[int, ...]
                 ) -> np.ndarray:
        """Zero-mean logistic noise of unit variance [B, *shape]."""
        u = self.uniform(sess, t, stream, shape)
        return (np.log(u) - np.log1p(-u)) * (np.sqrt(3.0) / np.pi)


def sample_candidates(streams: Streams, sess: np.ndarray, t: int, world: World, n: int
                      ) -> np.ndarray:
    """[B, n] distinct item indices per request, popularity-weighted without replacement.

    Successive weighted draws with replacement (alias method), keeping the first n
    distinct in draw order, are sampling without replacement. We draw 3n per request; a
    request whose 3n draws hold fewer than n distinct items (rare), or a catalogue with
    fewer than 3n items, uses the Gumbel top-n of all items instead (the same law).
    Candidate order = draw order (Gumbel rows: by key).
    """
    b, n_items = len(sess), len(world.alias_prob)
    out = np.empty((b, n), dtype=np.int64)
    short = np.ones(b, dtype=bool)
    m = 3 * n
    if m < n_items:
        x = streams.uniform(sess, t, Streams.CANDIDATES, (m,)) * n_items  # [B, m]
        i = np.minimum(x.astype(np.int64), n_items - 1)
        draws = np.where(x - i < world.alias_prob[i], i, world.alias_index[i])
        # first occurrence of each item in draw order: sort (item, position) keys
        key = np.sort(draws * m + np.arange(m)[None, :], axis=1)
        first = np.ones((b, m), dtype=bool)
        first[:, 1:] = key[:, 1:] // m != key[:, :-1] // m
        keep = np.zeros((b, m), dtype=bool)
        rows = np.broadcast_to(np.arange(b)[:, None], (b, m))
        keep[rows[first], key[first] % m] = True  # [B, m] in draw order
        rank = np.cumsum(keep, axis=1) - 1
        sel = keep & (rank < n)
        out[rows[sel], rank[sel]] = draws[sel]
        short = keep.sum(1) < n
    if short.any():
        rows_s = np.flatnonzero(short)
        u = streams.uniform(sess[rows_s], t, Streams.GUMBEL, (n_items,))
        keys = np.log(world.popularity + RETRIEVAL_FLOOR)[None, :] - np.log(-np.log(u))
        top = np.argpartition(-keys, n - 1, axis=1)[:, :n]
        top_order = np.argsort(-np.take_along_axis(keys, top, 1), axis=1, kind="stable")
        out[rows_s] = np.take_along_axis(top, top_order, 1)
    return out


# --- sessions of the day -------------------------------------------------------------------
@dataclass
class Sessions:
    """The day's sessions [S], in user order (session number = index)."""

    user: np.ndarray  # index into the world's users
    k: np.ndarray  # the user's session number that day
    start_s: np.ndarray  # seconds after midnight
    device: np.ndarray
    network: np.ndarray
    sat0: np.ndarray  # initial satisfaction


def draw_sessions(world: World, rng: np.random.Generator) -> Sessions:
    """Poisson(sessions_per_user * (0.5 + activity)) sessions per user, starting around the
    user's preferred hour, folded into [0, latest start] so that even a session of
    max_requests requests of the longest items ends before midnight."""
    cfg = world.cfg
    n_users = len(world.user_id)
    n_sess = rng.poisson(cfg.sessions_per_user * (0.5 + world.activity))
    user = np.repeat(np.arange(n_users), n_sess)
    total = len(user)
    k = np.arange(total) - np.repeat(np.cumsum(n_sess) - n_sess, n_sess)
    latest = DAY_S - 1.0 - cfg.max_requests * (L * float(world.duration_s.max())
                                               + cfg.request_gap_s)
    assert latest > 0, "sessions of max_requests requests do not fit in a day"
    start = (world.pref_hour[user] * 3600.0 + rng.uniform(0.0, 3600.0, total)
             + rng.normal(0.0, START_JITTER_S, total))
    start = np.abs(start)  # fold at midnight and at the latest start
    start = np.clip(latest - np.abs(latest - start), 0.0, latest)
    device = np.where(rng.random(total) < MAIN_DEVICE_SHARE, world.main_device[user],
                      rng.integers(0, S.NUM_DEVICES, total)).astype(np.int32)
    network = (rng.random(total) < CELLULAR_SHARE).astype(np.int32)
    sat0 = world.initial_satisfaction(user, rng.normal(0.0, 1.0, total))
    return Sessions(user=user, k=k, start_s=start, device=device, network=network, sat0=sat0)


# --- the serving loop --------------------------------------------------------------------
@dataclass
class DayArrays:
    """Everything one simulated day produced, as numpy arrays (rows in step order)."""

    sessions: Sessions
    explore_half_width: float
    n_candidates: int
    n_logged: int = 0
    req: dict[str, list[np.ndarray]] = field(default_factory=dict)
    exp: dict[str, list[np.ndarray]] = field(default_factory=dict)
    cand: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, table: dict[str, list[np.ndarray]], **cols: np.ndarray) -> None:
        for name, v in cols.items():
            table.setdefault(name, []).append(v)

    def cat(self, table: dict[str, list[np.ndarray]], name: str) -> np.ndarray:
        return np.concatenate(table[name]) if table.get(name) else np.zeros(0)


def _take_exposed(x: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Exposed slots top [B, L] of a per-candidate array x [B, N, ...]; an x of N == 1
    (one value per request) is broadcast to the l exposed items."""
    b, n_top = top.shape
    if x.shape[1] == 1:
        return np.broadcast_to(x, (b, n_top, *x.shape[2:])).copy()
    return np.take_along_axis(x, top.reshape(b, n_top, *([1] * (x.ndim - 2))), 1)


def _arm_centres(arms: Arms, users: np.ndarray, ustate: np.ndarray, pstate: np.ndarray
                 ) -> np.ndarray:
    """Box centres [B, N, A] (some arm at pair level) or [B, 1, A], each request's from the
    policy of its user's arm."""
    if len(arms.policies) == 1:
        mu = _box_centres(arms.policies[0], ustate, pstate)
        return mu if arms.pair_level else mu[:, None, :]
    b, n = pstate.shape[:2]
    arm = arms.of_user[users]
    out = np.empty((b, n if arms.pair_level else 1, A))
    for j, policy in enumerate(arms.policies):
        rows = np.flatnonzero(arm == j)
        if rows.size:
            mu = _box_centres(policy, ustate[rows], pstate[rows])
            out[rows] = mu if policy.level == "pair" else mu[:, None, :]
    return out


def _box_centres(policy: Policy, ustate: np.ndarray, pstate: np.ndarray) -> np.ndarray:
    """mu [B, 10] (fixed / user level) or [B, N, 10] (pair level), checked and clipped."""
    b, n = pstate.shape[:2]
    mu = np.asarray(policy.act(ustate, pstate), dtype=np.float64)
    want = (b, n, A) if policy.level == "pair" else (b, A)
    if mu.shape != want:
        raise ValueError(f"policy {policy.version} ({policy.level}) returned {mu.shape}, "
                         f"expected {want}")
    if not np.isfinite(mu).all():
        raise ValueError(f"policy {policy.version} returned non-finite actions")
    return np.clip(mu, -1.0, 1.0)


def _run_chunk(world: World, arms: Arms, sess_ids: np.ndarray, ses: Sessions,
               streams: Streams, h: float, day0_ms: int, out: DayArrays,
               states: DayArrays | None) -> None:
    cfg = world.cfg
    n_cand = out.n_candidates
    pair_level = arms.pair_level
    per_candidate = cfg.explore_per_candidate
    active = sess_ids.copy()
    clock = ses.start_s[active].copy()
    sat = ses.sat0[active].copy()
    watch_before = np.zeros(len(active))
    valid_before = np.zeros(len(active))
    for t in range(cfg.max_requests):
        if active.size == 0:
            break
        b = active.size
        users, device, network = ses.user[active], ses.device[active], ses.network[active]
        hour = (clock // 3600).astype(np.int32)
        # retrieval, true model, MTL predictions, serving state
        cands = sample_candidates(streams, active, t, world, n_cand)  # [B, N]
        truth = world.true_probs(users, cands, network)
        noise = streams.logistic(active, t, Streams.MTL_NOISE, (n_cand, K))
        preds = world.mtl_predictions(truth, cands, device, hour, noise)  # [B, N, K]
        c_rank, c_z, c_mean, c_std = F.candidate_stats(preds)
        ublk = F.user_block(world.age_bucket[users], world.gender[users], world.region[users],
                            world.activity[users], world.interest[users], hour, device,
                            network, np.full(b, t), watch_before, valid_before)
        pstate = F.pair_state(ublk, world.item_features[cands], preds, c_rank, c_z)
        ustate = F.user_state(ublk, c_mean, c_std)
        # box centre, exploration, fusion, exposure
        mu_pairs = _arm_centres(arms, users, ustate, pstate)  # [B, N or 1, A]
        mu = mu_pairs if pair_level else mu_pairs[:, 0, :]  # [B, N, A] or [B, A]
        eps_shape = (n_cand, A) if per_candidate else (A,)
        if h > 0:
            eps = h * (2.0 * streams.uniform(active, t, Streams.EXPLORE, eps_shape) - 1.0)
        else:
            eps = np.zeros((b, *eps_shape))
        eps_pairs = eps if per_candidate else eps[:, None, :]
        act_pairs = np.clip(mu_pairs + eps_pairs, -1.0, 1.0)  # [B, N or 1, A]
        score = log_fused_score(preds, act_pairs)  # [B, N]
        order = np.argsort(-score, axis=1, kind="stable")  # [B, N] by logged score
        top = order[:, :L]  # [B, L] candidate slots of the exposed items
        items = np.take_along_axis(cands, top, 1)
        act_exp = _take_exposed(act_pairs, top)  # [B, L, A]
        mu_exp = _take_exposed(mu_pairs, top)
        if pair_level or per_candidate:
            req_act, req_mu = act_exp.mean(1), mu_exp.mean(1)
        else:
            req_act, req_mu = act_pairs[:, 0, :], mu
        req_noise = _take_exposed(eps, top).mean(1) if per_candidate else eps
        # behaviour from the TRUE model, satisfaction, exit
        fb = world.sample_feedback(truth.take(top), items,
                                   streams.uniform(active, t, Streams.WATCH, (L,)),
                                   streams.uniform(active, t, Streams.INTERACT, (L, 3)))
        sat = world.next_satisfaction(sat, fb)
        leave = streams.uniform(active, t, Streams.EXIT, ()) < sigmoid(-sat)
        leave |= t == cfg.max_requests - 1
        out.add(out.req, sess=active, t=np.full(b, t, np.int32),
                ts_ms=day0_ms + np.floor(clock * 1000.0).astype(np.int64), hour=hour,
                action=req_act.astype(np.float32), mu_bp=req_mu.astype(np.float32),
                noise=req_noise.astype(np.float32), c_mean=c_mean, c_std=c_std,
                leave=leave)
        out.add(out.exp, sess=np.repeat(active, L), t=np.full(b * L, t, np.int32),
                item=items.reshape(-1), pos=np.tile(np.arange(L, dtype=np.int32), b),
                preds=_take_exposed(preds, top).reshape(-1, K),
                rank=_take_exposed(c_rank, top).reshape(-1, K),
                z=_take_exposed(c_z, top).reshape(-1, K),
                action=act_exp.reshape(-1, A).astype(np.float32),
                mu_bp=mu_exp.reshape(-1, A).astype(np.float32), watch=fb.watch_time_s.reshape(-1),
                valid=fb.valid.reshape(-1), finish=fb.finish.reshape(-1),
                like=fb.like.reshape(-1), share=fb.share.reshape(-1),
                collect=fb.collect.reshape(-1), skip=fb.skip.reshape(-1),
                leave=np.repeat(leave, L))
        kc = out.n_logged
        if kc:  # the top K by logged score: the exposed L first, in position order
            logged = order[:, :kc]
            out.add(out.cand, sess=np.repeat(active, kc), t=np.full(b * kc, t, np.int32),
                    item=np.take_along_axis(cands, logged, 1).reshape(-1),
                    idx=np.tile(np.arange(kc, dtype=np.int32), b),
                    preds=_take_exposed(preds, logged).reshape(-1, K),
                    rank=_take_exposed(c_rank, logged).reshape(-1, K),
                    z=_take_exposed(c_z, logged).reshape(-1, K),
                    action=_take_exposed(act_pairs, logged).reshape(-1, A).astype(np.float32),
                    mu_bp=_take_exposed(mu_pairs, logged).reshape(-1, A).astype(np.float32),
                    score=np.take_along_axis(score, logged, 1).reshape(-1))
        if states is not None:
            states.add(states.req, sess=active, t=np.full(b, t, np.int32), user=ustate)
            states.add(states.exp, pair=_take_exposed(pstate, top).reshape(-1, S.PAIR_STATE_DIM))
            if kc:
                states.add(states.cand, pair=_take_exposed(pstate, order[:, :kc])
                           .reshape(-1, S.PAIR_STATE_DIM))
        # next request: the clock runs while the user watches, session stats accumulate
        watched = fb.watch_time_s.sum(1)
        clock = clock + watched + cfg.request_gap_s
        watch_before = watch_before + watched
        valid_before = valid_before + fb.valid.sum(1)
        stay = ~leave
        active, clock, sat = active[stay], clock[stay], sat[stay]
        watch_before, valid_before = watch_before[stay], valid_before[stay]


def run_day(world: World, policy: Policy | Arms, ds: str, *, explore: bool = True,
            return_states: bool = False, seed: int | None = None,
            log_candidates: bool = True) -> tuple[DayArrays, DayArrays | None]:
    """Simulate day `ds` as arrays (see `simulate_day`); without `log_candidates`, no
    candidate rows are kept (the ground-truth evaluation reads only the exposures)."""
    cfg = world.cfg
    arms = _as_arms(world, policy)
    root = day_seed(cfg.seed if seed is None else seed, ds)
    ss_sessions, ss_streams = root.spawn(2)
    ses = draw_sessions(world, np.random.default_rng(ss_sessions))
    streams = Streams(int(ss_streams.generate_state(1, np.uint64)[0]))
    h = float(cfg.explore_half_width) if explore else 0.0
    kc = min(cfg.logged_candidates, cfg.n_candidates) if log_candidates else 0
    out = DayArrays(ses, h, cfg.n_candidates, kc)
    states = DayArrays(ses, h, cfg.n_candidates, kc) if return_states else None
    n_s = len(ses.user)
    for lo in range(0, n_s, cfg.session_chunk):
        _run_chunk(world, arms, np.arange(lo, min(lo + cfg.session_chunk, n_s)), ses,
                   streams, h, day_start_ms(ds), out, states)
    return out, states


def simulate_day(world: World, policy: Policy | Arms, ds: str, *, explore: bool = True,
                 return_states: bool = False, seed: int | None = None) -> DayLogs:
    """Simulate day `ds` (YYYY-MM-DD) served by `policy`, with box exploration unless
    `explore` is False. Deterministic in (seed, ds) (seed defaults to cfg.seed).

    `policy` may be `Arms`: several policies serving their arms' users side by side (every
    request is logged with its arm and its policy's version); a plain policy is the one arm
    `current`. The arms see the same sessions and random numbers as one policy would.

    With `return_states`, also the exact states the policy saw for the exposed pairs and
    requests (so the Spark job's rebuild from the logged columns can be checked)."""
    arms = _as_arms(world, policy)
    out, states = run_day(world, arms, ds, explore=explore, return_states=return_states,
                          seed=seed)
    return _assemble(world, ds, arms, out, states)


# --- DataFrames --------------------------------------------------------------------------
def _rows(a: np.ndarray) -> list[np.ndarray]:
    """[R, D] -> R float32 arrays (one per DataFrame row)."""
    return list(np.ascontiguousarray(a, dtype=np.float32))


def _ids(ds: str, world: World, ses: Sessions, sess: np.ndarray, t: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """(session_id, request_id) strings (object arrays) for request rows (sess, t)."""
    sid_all = [f"{ds}-u{u}-s{k}" for u, k in zip(world.user_id[ses.user].tolist(),
                                                  ses.k.tolist())]
    sid = np.array([sid_all[i] for i in sess.tolist()], dtype=object)
    rid = np.array([f"{sid_all[i]}-r{j:02d}" for i, j in zip(sess.tolist(), t.tolist())],
                   dtype=object)
    return sid, rid


def _assemble(world: World, ds: str, arms: Arms, out: DayArrays,
              states: DayArrays | None) -> DayLogs:
    ses = out.sessions
    users = pd.DataFrame({
        "ds": ds, "user_id": world.user_id.astype(np.int64),
        "age_bucket": world.age_bucket.astype(np.int32),
        "gender": world.gender.astype(np.int32), "region": world.region.astype(np.int32),
        "activity": world.activity.astype(np.float64), "interest": _rows(world.interest)})
    items = pd.DataFrame({
        "ds": ds, "item_id": world.item_id.astype(np.int64),
        "category": world.category.astype(np.int32),
        "author_id": world.author_id.astype(np.int64),
        "duration_s": world.duration_s.astype(np.float64), "item_vec": _rows(world.item_vec),
        "popularity": world.popularity.astype(np.float64)})

    # requests, ordered by (session, request index)
    r_sess, r_t = out.cat(out.req, "sess").astype(np.int64), out.cat(out.req, "t")
    r_t = r_t.astype(np.int32)
    r_ord = np.lexsort((r_t, r_sess))
    rc = lambda name: out.cat(out.req, name)[r_ord]  # noqa: E731
    sid, rid = _ids(ds, world, ses, r_sess[r_ord], r_t[r_ord])
    n_req = len(r_ord)
    r_arm = arms.of_user[ses.user[r_sess[r_ord]]]
    requests = pd.DataFrame({
        "ds": ds, "request_id": rid, "session_id": sid,
        "user_id": world.user_id[ses.user[r_sess[r_ord]]].astype(np.int64),
        "request_index": r_t[r_ord], "ts_ms": rc("ts_ms").astype(np.int64),
        "hour": rc("hour").astype(np.int32),
        "device": ses.device[r_sess[r_ord]].astype(np.int32),
        "network": ses.network[r_sess[r_ord]].astype(np.int32),
        "arm": np.array(arms.names, dtype=object)[r_arm],
        "policy_version": np.array([p.version for p in arms.policies], dtype=object)[r_arm],
        "action": _rows(rc("action").reshape(-1, A)),
        "mu_bp": _rows(rc("mu_bp").reshape(-1, A)),
        "noise": _rows(rc("noise").reshape(-1, A)),
        "explore_half_width": np.full(n_req, out.explore_half_width, dtype=np.float64),
        "n_candidates": np.full(n_req, out.n_candidates, dtype=np.int32),
        "cand_pred_mean": _rows(rc("c_mean").reshape(-1, K)),
        "cand_pred_std": _rows(rc("c_std").reshape(-1, K))})

    # exposures and feedback, ordered by (session, request index, position)
    e_sess, e_t = out.cat(out.exp, "sess").astype(np.int64), out.cat(out.exp, "t")
    e_pos = out.cat(out.exp, "pos").astype(np.int32)
    e_ord = np.lexsort((e_pos, e_t, e_sess))
    ec = lambda name: out.cat(out.exp, name)[e_ord]  # noqa: E731
    # every request exposes exactly L items, so the exposures line up with the requests
    assert np.array_equal(e_sess[e_ord], np.repeat(r_sess[r_ord], L))
    e_rid = np.repeat(rid, L)
    e_item = world.item_id[ec("item").astype(np.int64)].astype(np.int64)
    exposures = pd.DataFrame({
        "ds": ds, "request_id": e_rid, "item_id": e_item, "position": e_pos[e_ord],
        "preds": _rows(ec("preds").reshape(-1, K)), "cand_rank": _rows(ec("rank").reshape(-1, K)),
        "cand_z": _rows(ec("z").reshape(-1, K)), "action": _rows(ec("action").reshape(-1, A)),
        "mu_bp": _rows(ec("mu_bp").reshape(-1, A))})
    i32 = lambda name: ec(name).astype(np.int32)  # noqa: E731
    feedback = pd.DataFrame({
        "ds": ds, "request_id": e_rid.copy(), "item_id": e_item.copy(),
        "watch_time_s": ec("watch").astype(np.float64), "valid": i32("valid"),
        "finish": i32("finish"), "like": i32("like"), "share": i32("share"),
        "collect": i32("collect"), "skip": i32("skip"),
        "exit_after_request": i32("leave")})
    logs = DayLogs(users, items, requests, exposures, feedback)
    kc = out.n_logged
    if kc:  # K candidates per request, in (session, request index, cand_index) order
        c_sess = out.cat(out.cand, "sess").astype(np.int64)
        c_t, c_idx = out.cat(out.cand, "t"), out.cat(out.cand, "idx").astype(np.int32)
        c_ord = np.lexsort((c_idx, c_t, c_sess))
        cc = lambda name: out.cat(out.cand, name)[c_ord]  # noqa: E731
        assert np.array_equal(c_sess[c_ord], np.repeat(r_sess[r_ord], kc))
        c_index = c_idx[c_ord]
        exposed = c_index < L
        logs.raw_candidates = pd.DataFrame({
            "ds": ds, "request_id": np.repeat(rid, kc),
            "item_id": world.item_id[cc("item").astype(np.int64)].astype(np.int64),
            "cand_index": c_index, "preds": _rows(cc("preds").reshape(-1, K)),
            "cand_rank": _rows(cc("rank").reshape(-1, K)),
            "cand_z": _rows(cc("z").reshape(-1, K)),
            "action": _rows(cc("action").reshape(-1, A)),
            "mu_bp": _rows(cc("mu_bp").reshape(-1, A)),
            "score": cc("score").astype(np.float64), "exposed": exposed,
            # position = cand_index when exposed, NULL otherwise
            "position": pd.arrays.IntegerArray(c_index.astype(np.int32), mask=~exposed)})
    if states is not None:
        logs.user_states = pd.DataFrame({
            "request_id": rid,
            "user_state": _rows(states.cat(states.req, "user").reshape(-1, S.USER_STATE_DIM)
                                [r_ord])})
        logs.pair_states = pd.DataFrame({
            "request_id": e_rid.copy(), "position": e_pos[e_ord],
            "pair_state": _rows(states.cat(states.exp, "pair").reshape(-1, S.PAIR_STATE_DIM)
                                [e_ord])})
        if kc:
            logs.cand_states = pd.DataFrame({
                "request_id": logs.raw_candidates["request_id"].to_numpy().copy(),
                "cand_index": c_index,
                "pair_state": _rows(states.cat(states.cand, "pair")
                                    .reshape(-1, S.PAIR_STATE_DIM)[c_ord])})
    return logs


# --- ground truth --------------------------------------------------------------------------
def evaluation_world(cfg: SimConfig, seed: int, n_users: int | None = None) -> World:
    """The held-out A/B population of `seed`: fresh users, the same catalogue and MTL model."""
    return World.build(cfg, population=seed, n_users=n_users)


def evaluate_policy(cfg: SimConfig, policy: Policy, *, seed: int,
                    n_users: int | None = None) -> dict[str, float]:
    """Ground-truth "online A/B" of `policy`: a fresh population (users drawn from `seed`,
    facing the same catalogue and MTL model), one day served without exploration.

    Returns uvc (valid views per user per day, over ALL users of the population, including
    those without a session), udt (watch seconds per user per day), their standard errors
    over users (uvc_se, udt_se), and the counts sessions, requests, users. Policies
    evaluated with the same seed see the same users, sessions and random numbers.
    """
    world = evaluation_world(cfg, seed, n_users)
    day = int(np.random.SeedSequence([cfg.seed, int(seed), 0xAB]).generate_state(1)[0])
    out, _ = run_day(world, policy, EVAL_DS, explore=False, seed=day, log_candidates=False)
    n = len(world.user_id)
    user = out.sessions.user[out.cat(out.exp, "sess").astype(np.int64)]
    valid = np.bincount(user, weights=out.cat(out.exp, "valid").astype(np.float64), minlength=n)
    watch = np.bincount(user, weights=out.cat(out.exp, "watch").astype(np.float64), minlength=n)
    return {"uvc": float(valid.mean()), "udt": float(watch.mean()),
            "uvc_se": float(valid.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "udt_se": float(watch.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
            "sessions": float(len(out.sessions.user)),
            "requests": float(sum(len(x) for x in out.req.get("sess", []))),
            "users": float(n)}
