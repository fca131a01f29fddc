"""ORACLE reference policies: they read the simulator's ground truth. Never a learner.

Why. The experiment (docs/EXPERIMENT.md) finds EnhancedRL (pair level), UnifiedRL and
BatchRL-MTF (user level) within 0.1% UVC of one another. Before blaming a learner we ask how
much a pair-level policy could gain at all over a user-level one in this simulator, inside
the same exploration box the pair-level learner is confined to. These policies answer it
with the simulator's truth, which no learner sees: they are bounds, not methods, and are
not in `model.learners.LEARNERS`.

Both oracles take a user-level (or fixed) `base` policy as the box centre c and a myopic
per-pair utility, the probability of a valid view (UVC counts valid views):

    target "truth"       the TRUE P(valid) of the (user, item, network) pair
    target "calibrated"  the MTL valid prediction with the systematic miscalibration
                         (category slope / offset, device and hour offsets) inverted; the
                         per-request MTL noise stays: the best a fusion that sees category,
                         device and hour could learn from the predictions

and serve, with `h` the box half-width in normalised action units:

    PairBoxOracle  per candidate, the action in [c - h, c + h] that maximises its fused score
                   if it is among the L candidates of highest utility, else the one that
                   minimises it (pushes the best L up and the rest down, as far as the box
                   allows); h >= 2 lifts the box (the whole action space)
    UserBoxOracle  per request, one action for all candidates: of c and `n_draws` fixed
                   points of the box, the one whose exposed top L has the highest summed
                   utility (the user-level counterpart, same box, same utility)

Both are greedy (myopic) and use finitely many actions, so they are lower bounds of the best
policy of their level that knows the truth, and far above what a learner that does not can
reach. Their difference, served to the same held-out populations, measures the per-pair
headroom. To find (user, item, network) from the serving states the oracle looks the
observable vectors (interest, item_vec) up in the population's `World`, so an oracle is
built per evaluation population (`evaluation_world(cfg, seed, n_users)`).
"""

from __future__ import annotations

import numpy as np

from core import schema as S
from core.fusion import N_OBJ, log_fused_score, objectives, to_normalized, to_physical
from core.policy import Policy
from sim.world import World, logit

L, A = S.LIST_LEN, S.ACTION_DIM
_ITEM_VEC = slice(S.OFFSET_ITEM + S.I_VEC.start, S.OFFSET_ITEM + S.I_VEC.stop)
TARGETS = ("truth", "calibrated", "mtl")


def _keys(x: np.ndarray) -> np.ndarray:
    """One uint64 hash per row of float32 vectors [M, 8] (exact bits, so exact match)."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32).astype(np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    h = np.zeros(len(bits), np.uint64)
    for j in range(bits.shape[1]):
        h = (h ^ bits[:, j]) * mult
    return h


class _Lookup:
    """Row index of a float32 vector in a table, by exact bits (raises on a miss)."""

    def __init__(self, table: np.ndarray, what: str):
        self.table, self.what = np.asarray(table, np.float32), what
        k = _keys(self.table)
        self.order = np.argsort(k, kind="stable")
        self.sorted = k[self.order]
        if len(np.unique(self.sorted)) != len(k):
            raise ValueError(f"{what} vectors are not unique; cannot decode states")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, np.float32).reshape(-1, self.table.shape[1])
        k = _keys(flat)
        pos = np.minimum(np.searchsorted(self.sorted, k), len(self.sorted) - 1)
        idx = self.order[pos]
        if not np.array_equal(self.table[idx], flat):
            raise ValueError(f"a state's {self.what} is not in this population's world")
        return idx.reshape(x.shape[:-1])


class StateDecoder:
    """(user, item, network, device, hour) of serving states, from one population's World."""

    def __init__(self, world: World):
        self.world = world
        self._user = _Lookup(world.interest, "interest")
        self._item = _Lookup(world.item_vec, "item_vec")

    def users(self, user_state: np.ndarray) -> np.ndarray:
        return self._user(np.asarray(user_state)[:, S.U_INTEREST])

    def items(self, pair_state: np.ndarray) -> np.ndarray:
        return self._item(np.asarray(pair_state)[..., _ITEM_VEC])

    @staticmethod
    def context(user_state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(network [B], device [B], hour [B]) from the user block."""
        u = np.asarray(user_state, np.float64)
        ang = np.arctan2(u[:, S.U_HOUR_SIN], u[:, S.U_HOUR_COS])
        hour = np.rint(ang * 24.0 / (2.0 * np.pi)).astype(np.int64) % 24
        return (np.rint(u[:, S.U_NETWORK]).astype(np.int64), u[:, S.U_DEVICE].argmax(1), hour)

    def heads(self, user_state: np.ndarray, pair_state: np.ndarray, target: str
              ) -> tuple[np.ndarray, np.ndarray]:
        """([B, N, K] head probabilities, true or de-miscalibrated; [B, N] durations in s)."""
        network, device, hour = self.context(user_state)
        items = self.items(pair_state)
        w = self.world
        if target == "truth":
            probs = w.true_probs(self.users(user_state), items, network).heads()
        elif target == "calibrated":
            cat = w.category[items]
            z = logit(np.asarray(pair_state, np.float64)[..., S.PAIR_PRED])
            z = (z - w.cal_offset[cat] - w.device_offset[device][:, None, :]
                 - w.hour_offset[hour][:, None, :]) / w.cal_slope[cat]
            probs = 1.0 / (1.0 + np.exp(-z))
        elif target == "mtl":
            probs = np.asarray(pair_state, np.float64)[..., S.PAIR_PRED]
        else:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        return probs, w.duration_s[items]

    def utility(self, user_state: np.ndarray, pair_state: np.ndarray, target: str,
                beta: float) -> np.ndarray:
        """[B, N] E[valid] + beta E[satisfaction change] of showing each pair (the module
        docstring): beta = 0 is myopic UVC; beta > 0 values keeping the user in the feed."""
        p, dur = self.heads(user_state, pair_state, target)
        c = self.world.cfg
        dsat = (c.sat_valid * p[..., 0] + c.sat_interact * p[..., 3:6].sum(-1)
                - c.sat_skip * p[..., 6] - c.sat_watch_fatigue * dur * p[..., 1] / 60.0)
        return p[..., 0] + beta * dsat


def box_extremes(preds: np.ndarray, centre: np.ndarray, h: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(up, down) normalised actions [..., A] in [c - h, c + h] and [-1, 1] that maximise /
    minimise each pair's log fused score sum_i p_i log(obj_i + b_i).

    Every term is increasing in its bias (p_i >= 0), so the max takes the highest bias and
    the highest power where log(obj + b) > 0, else the lowest; the min mirrors it.
    preds [..., K]; centre broadcastable to [..., A].
    """
    lo = to_physical(np.clip(centre - h, -1.0, 1.0))
    hi = to_physical(np.clip(centre + h, -1.0, 1.0))
    o = np.clip(objectives(preds), 0.0, 1.0)  # [..., 5]
    p_lo, p_hi, b_lo, b_hi = lo[..., :N_OBJ], hi[..., :N_OBJ], lo[..., N_OBJ:], hi[..., N_OBJ:]
    up_p = np.where(np.log(o + b_hi) > 0, p_hi, p_lo)
    down_p = np.where(np.log(o + b_lo) < 0, p_hi, p_lo)
    up = np.concatenate([up_p, np.broadcast_to(b_hi, up_p.shape)], -1)
    down = np.concatenate([down_p, np.broadcast_to(b_lo, down_p.shape)], -1)
    return to_normalized(up), to_normalized(down)


def _centres(base: Policy, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
    if base.level == "pair":
        raise ValueError("the oracle's centre must be a fixed or user-level policy")
    return np.clip(np.asarray(base.act(user_state, pair_state), np.float64), -1.0, 1.0)


class PairBoxOracle:
    """ORACLE, pair level: best L candidates pushed up, the rest down, inside the box."""

    level = "pair"

    def __init__(self, base: Policy, decoder: StateDecoder, h: float, target: str = "truth",
                 beta: float = 0.0, version: str = "oracle-pair"):
        self.base, self.decoder, self.h, self.target = base, decoder, float(h), target
        self.beta = float(beta)
        self.version = version

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        c = _centres(self.base, user_state, pair_state)[:, None, :]  # [B, 1, A]
        util = self.decoder.utility(user_state, pair_state, self.target, self.beta)  # [B, N]
        preds = np.asarray(pair_state)[..., S.PAIR_PRED]
        up, down = box_extremes(preds, c, self.h)
        kth = -np.sort(-util, axis=1)[:, min(L, util.shape[1]) - 1:min(L, util.shape[1])]
        return np.where((util >= kth)[..., None], up, down).astype(np.float32)


class UserBoxOracle:
    """ORACLE, user level: per request the best of c and `n_draws` fixed points of the box."""

    level = "user"

    def __init__(self, base: Policy, decoder: StateDecoder, h: float, target: str = "truth",
                 beta: float = 0.0, n_draws: int = 32, seed: int = 0,
                 version: str = "oracle-user"):
        self.base, self.decoder, self.h, self.target = base, decoder, float(h), target
        self.beta = float(beta)
        rng = np.random.default_rng(seed)
        self.offsets = np.vstack([np.zeros(A), h * rng.uniform(-1.0, 1.0, (n_draws, A))])
        self.version = version

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        c = _centres(self.base, user_state, pair_state)  # [B, A]
        util = self.decoder.utility(user_state, pair_state, self.target, self.beta)  # [B, N]
        preds = np.asarray(pair_state)[..., S.PAIR_PRED]
        best = np.full(len(c), -np.inf)
        out = c.copy()
        for off in self.offsets:
            a = np.clip(c + off, -1.0, 1.0)
            top = np.argsort(-log_fused_score(preds, a[:, None, :]), axis=1,
                             kind="stable")[:, :L]
            value = np.take_along_axis(util, top, 1).sum(1)
            better = value > best
            best = np.where(better, value, best)
            out[better] = a[better]
        return out.astype(np.float32)
