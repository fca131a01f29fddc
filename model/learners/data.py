"""In-memory training data shared by every learner: request lists as numpy arrays.

The experiment (mtf/experiment/) compares learners on exactly the same simulated logs, so
it skips Spark and Petastorm and builds the arrays straight from the simulator's DayLogs
with `return_states=True` (the states the policy saw; tests/spark/test_state_parity.py proves the
Spark job rebuilds the same vectors from the logged columns). One row per request, in
(session, request index) order; every request exposes exactly L = schema.LIST_LEN items.

Two views of a row: pair level (EnhancedRL: the L exposed pair states, their logged actions
and boxes, per-pair rewards) and user level (UnifiedRL, BatchRL-MTF: the request's user
state, its one logged action and box centre, the list reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core import schema as S
from core.reward import RewardConfig, critic_rewards

L, A, D, DU = S.LIST_LEN, S.ACTION_DIM, S.PAIR_STATE_DIM, S.USER_STATE_DIM


@dataclass
class TrainData:
    """n request lists. Shapes in the comments; float32 unless stated."""

    session: np.ndarray  # [n] int64, a session number unique across the data
    user_id: np.ndarray  # [n] int64
    request_index: np.ndarray  # [n] int64, 0-based within the session
    user_state: np.ndarray  # [n, DU]
    pair_state: np.ndarray  # [n, L, D]
    action: np.ndarray  # [n, L, A] logged normalised action of each exposed pair
    box_center: np.ndarray  # [n, L, A] mu_bp of each exposed pair
    req_action: np.ndarray  # [n, A] the request's logged action (user level)
    req_center: np.ndarray  # [n, A] the request's box centre (user level)
    mask: np.ndarray  # [n, L] 1 for a present item
    reward: np.ndarray  # [n, S, L] per critic set (0 watch, 1 other), per pair
    valid: np.ndarray  # [n, L] valid consumption label of each exposed pair
    next_idx: np.ndarray  # [n] int64 row of request t+1 of the same session, -1 if done
    half_width: float
    """h of the logged boxes (one per data set; the simulator's explore_half_width)."""
    cand_state: np.ndarray | None = None
    """[n, K, D] pair states of the request's logged candidates (logged-score order, the
    exposed l first); None when the logs hold no candidates."""
    cand_center: np.ndarray | None = None  # [n, K, A] their box centres
    cand_mask: np.ndarray | None = None  # [n, K] 1 for a present candidate

    def __len__(self) -> int:
        return len(self.session)

    @property
    def done(self) -> np.ndarray:
        """[n] 1.0 where the session ended after the request."""
        return (self.next_idx < 0).astype(np.float32)

    @classmethod
    def from_logs(cls, logs, reward: RewardConfig, session_offset: int = 0) -> TrainData:
        """Build from a `sim.DayLogs` simulated with `return_states=True`."""
        if logs.pair_states is None or logs.user_states is None:
            raise ValueError("simulate the day with return_states=True")
        req, fb = logs.raw_requests, logs.raw_feedback
        n = len(req)
        if not (req["request_id"].to_numpy() == logs.user_states["request_id"].to_numpy()).all():
            raise ValueError("user_states are not aligned with raw_requests")
        rid_exp = np.repeat(req["request_id"].to_numpy(), L)
        if not ((logs.raw_exposures["request_id"].to_numpy() == rid_exp).all()
                and (fb["request_id"].to_numpy() == rid_exp).all()
                and (logs.pair_states["request_id"].to_numpy() == rid_exp).all()):
            raise ValueError("exposures / feedback / pair states are not L per request in order")

        def stack(col, shape: tuple[int, ...]) -> np.ndarray:
            return np.stack(col.to_numpy()).astype(np.float32).reshape(n, *shape)

        sid = req["session_id"].to_numpy()
        session = np.cumsum(np.r_[True, sid[1:] != sid[:-1]]).astype(np.int64) - 1
        session += session_offset
        if len(np.unique(sid)) != (session[-1] - session_offset + 1 if n else 0):
            raise ValueError("the requests of a session are not contiguous")
        ridx = req["request_index"].to_numpy().astype(np.int64)
        order_ok = np.all((session[1:] != session[:-1]) | (ridx[1:] == ridx[:-1] + 1))
        if not order_ok:
            raise ValueError("requests are not in (session, request index) order")
        f = lambda c: fb[c].to_numpy().astype(np.float64).reshape(n, L)  # noqa: E731
        r_watch, r_other = critic_rewards(reward, f("watch_time_s"), f("valid"), f("like"),
                                          f("share"), f("collect"))
        leave = f("exit_after_request")[:, 0] > 0
        same_next = np.r_[session[1:] == session[:-1], False]
        next_idx = np.where(same_next & ~leave, np.arange(n) + 1, -1).astype(np.int64)
        hw = req["explore_half_width"].to_numpy()
        cand: dict[str, np.ndarray] = {}
        if logs.raw_candidates is not None and len(logs.raw_candidates):
            cnd, cst = logs.raw_candidates, logs.cand_states
            if cst is None:
                raise ValueError("simulate the day with return_states=True")
            k = len(cnd) // max(n, 1)
            rid_c = np.repeat(req["request_id"].to_numpy(), k)
            if not (len(cnd) == n * k and (cnd["request_id"].to_numpy() == rid_c).all()
                    and (cnd["cand_index"].to_numpy() == np.tile(np.arange(k), n)).all()
                    and (cst["request_id"].to_numpy() == rid_c).all()):
                raise ValueError("candidates are not K per request in (request, index) order")
            cand = {"cand_state": stack(cst["pair_state"], (k, D)),
                    "cand_center": stack(cnd["mu_bp"], (k, A)),
                    "cand_mask": np.ones((n, k), np.float32)}
        return cls(
            session=session, user_id=req["user_id"].to_numpy().astype(np.int64),
            request_index=ridx, user_state=stack(logs.user_states["user_state"], (DU,)),
            pair_state=stack(logs.pair_states["pair_state"], (L, D)),
            action=stack(logs.raw_exposures["action"], (L, A)),
            box_center=stack(logs.raw_exposures["mu_bp"], (L, A)),
            req_action=stack(req["action"], (A,)), req_center=stack(req["mu_bp"], (A,)),
            mask=np.ones((n, L), np.float32),
            reward=np.stack([r_watch, r_other], 1).astype(np.float32),
            valid=f("valid").astype(np.float32), next_idx=next_idx,
            half_width=float(hw[0]) if n else 0.0, **cand)

    @classmethod
    def concat(cls, parts: Sequence[TrainData]) -> TrainData:
        """Rows of every part, in order; next_idx re-based, sessions kept distinct."""
        if not parts:
            raise ValueError("nothing to concatenate")
        widths = {p.half_width for p in parts if len(p)}
        if len(widths) > 1:
            raise ValueError(f"parts have different box half-widths {sorted(widths)}")
        offs = np.cumsum([0] + [len(p) for p in parts])[:-1]
        s_offs = np.cumsum([0] + [int(p.session.max()) + 1 if len(p) else 0 for p in parts])
        cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
        with_cand = [p.cand_mask is not None for p in parts]
        if any(with_cand) and not all(with_cand):
            raise ValueError("some parts have logged candidates and some not")
        if len({p.cand_mask.shape[1] for p in parts if p.cand_mask is not None}) > 1:
            raise ValueError("parts have different candidate counts K")
        cand = ({n: cat(n) for n in ("cand_state", "cand_center", "cand_mask")}
                if all(with_cand) else {})
        return cls(
            session=np.concatenate([p.session + s for p, s in zip(parts, s_offs)]),
            user_id=cat("user_id"), request_index=cat("request_index"),
            user_state=cat("user_state"), pair_state=cat("pair_state"), action=cat("action"),
            box_center=cat("box_center"), req_action=cat("req_action"),
            req_center=cat("req_center"), mask=cat("mask"), reward=cat("reward"),
            valid=cat("valid"),
            next_idx=np.concatenate([np.where(p.next_idx >= 0, p.next_idx + o, -1)
                                     for p, o in zip(parts, offs)]),
            half_width=widths.pop() if widths else parts[0].half_width, **cand)

    # --- minibatches --------------------------------------------------------------------
    def _next(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row of the next request, clamped to a valid row; 1.0 where there is one) [B]"""
        nxt = self.next_idx[idx]
        has = nxt >= 0
        return np.where(has, nxt, idx), has.astype(np.float32)

    def pair_batch(self, idx: np.ndarray, candidates: bool = False,
                   next_candidates: bool = False) -> dict[str, torch.Tensor]:
        """EnhancedRL's batch contract (model/enhanced_rl.py BATCH_SHAPES) for rows idx,
        with the request's (CAND_SHAPES) and the next request's (NEXT_CAND_SHAPES) logged
        candidates when asked for."""
        nxt, has = self._next(idx)
        t = torch.from_numpy
        extra: dict[str, torch.Tensor] = {}
        if candidates or next_candidates:
            if self.cand_state is None or self.cand_center is None or self.cand_mask is None:
                raise ValueError("the data holds no logged candidates (raw_candidates)")
            if candidates:
                extra.update(cand_state=t(self.cand_state[idx]),
                             cand_center=t(self.cand_center[idx]),
                             cand_mask=t(self.cand_mask[idx]))
            if next_candidates:
                extra.update(next_cand_state=t(self.cand_state[nxt]),
                             next_cand_center=t(self.cand_center[nxt]),
                             next_cand_mask=t(self.cand_mask[nxt] * has[:, None]))
        return extra | {
            "pair_state": t(self.pair_state[idx]), "action": t(self.action[idx]),
            "box_center": t(self.box_center[idx]), "mask": t(self.mask[idx]),
            "reward": t(self.reward[idx]), "next_pair_state": t(self.pair_state[nxt]),
            "next_box_center": t(self.box_center[nxt]),
            "next_mask": t(self.mask[nxt] * has[:, None]), "done": t(1.0 - has)}

    def user_batch(self, idx: np.ndarray) -> dict[str, torch.Tensor]:
        """User-level batch: state [B, DU], action / center [B, A], reward [B, S] (list
        sums), next_state / next_center [B, ...] (the row itself when done), done [B]."""
        nxt, has = self._next(idx)
        t = torch.from_numpy
        return {
            "state": t(self.user_state[idx]), "action": t(self.req_action[idx]),
            "center": t(self.req_center[idx]),
            "reward": t((self.reward[idx] * self.mask[idx][:, None, :]).sum(-1)),
            "next_state": t(self.user_state[nxt]), "next_center": t(self.req_center[nxt]),
            "done": t(1.0 - has)}

    def first_requests(self) -> np.ndarray:
        """Rows of each session's first request (the NCIS units)."""
        return np.flatnonzero(np.r_[True, self.session[1:] != self.session[:-1]])

    def session_returns(self, gamma: float) -> np.ndarray:
        """Discounted return of every session from its first request, aligned with
        `first_requests()`: G = sum_t gamma^t (sum of the list's rewards over critic sets)."""
        r = (self.reward.sum(1) * self.mask).sum(-1).astype(np.float64)  # [n]
        first = self.first_requests()
        sess_of_row = np.cumsum(np.r_[True, self.session[1:] != self.session[:-1]]) - 1
        t0 = self.request_index[first][sess_of_row]
        return np.bincount(sess_of_row, weights=r * gamma ** (self.request_index - t0),
                           minlength=len(first))


def minibatches(n: int, batch_size: int, steps: int, seed: int):
    """`steps` index arrays of `batch_size` rows drawn uniformly with replacement."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        yield rng.integers(0, n, size=min(batch_size, n) if n else 0)
