"""One offline evaluation of fusion policies on held-out logs (docs/ALGORITHM.md section 7),
used by the nightly `evaluate` job (jobs/evaluate.py) and by the experiment
(mtf/experiment/evaluate.py), so that both score a policy with the same code:

- NCIS (the paper's metric): capped, normalised importance sampling of the session returns
  over the logged exploration boxes, one value per kernel width sigma;
- MTF-GAUC (the paper's metric): per-user weighted AUC of the policy's fused scores on the
  exposed pairs;
- the **selection value** (`dm/valid`, `dm/watch`), a direct-method estimate that uses the
  logged candidates: a value model v(s) = (valid views, watch minutes) expected from
  showing a pair, including what follows in the session under the logging policy, is fitted
  once per held-out data set by list-level TD (the list's value is the sum of its pairs'
  values; y_t = sum_k r_tk + gamma sum_{k in t+1} v'(s_{t+1,k}), a target network v'); a
  policy is then scored by the mean over held-out requests of the sum of v over the l
  candidates its fused scores put on top. It needs no propensities and sees what a pair
  action changes (which items are shown), which NCIS's per-pair ratios cannot
  (docs/EXPERIMENT.md measures how each ranks policies against the simulator's truth).

Rows are request lists in (session, request index) order; see `HeldOut`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core import schema as S
from core.fusion import log_fused_score
from model.enhanced_rl import soft_update
from model.learners.data import TrainData
from model.metrics import discounted_returns, mtf_gauc, ncis
from model.networks import mlp

L, A, D = S.LIST_LEN, S.ACTION_DIM, S.PAIR_STATE_DIM
VALUE_HEADS = ("valid", "watch")
"""What the value model predicts per pair: valid views and the watch reward (UVC, UDT)."""


@dataclass
class HeldOut:
    """Held-out request lists. Shapes in the comments; float32 unless stated."""

    session: np.ndarray  # [n] session key (any dtype); a session's rows are contiguous
    user_id: np.ndarray  # [n] int64
    request_index: np.ndarray  # [n] int64
    user_state: np.ndarray  # [n, DU]
    pair_state: np.ndarray  # [n, L, D] the exposed pairs
    action: np.ndarray  # [n, L, A] logged normalised actions
    box_center: np.ndarray  # [n, L, A]
    mask: np.ndarray  # [n, L]
    reward: np.ndarray  # [n, L] the pair reward (both critic sets summed)
    valid: np.ndarray  # [n, L] valid view label
    watch: np.ndarray  # [n, L] watch reward (critic set 0: w_watch x minutes watched)
    half_width: float
    cand_state: np.ndarray | None = None  # [n, K, D] logged candidates, exposed l first
    cand_mask: np.ndarray | None = None  # [n, K]

    def __len__(self) -> int:
        return len(self.session)

    @classmethod
    def from_train_data(cls, td: TrainData) -> HeldOut:
        """The in-memory logs of the learners (model/learners/data.py) as held-out lists."""
        return cls(session=td.session, user_id=td.user_id, request_index=td.request_index,
                   user_state=td.user_state, pair_state=td.pair_state, action=td.action,
                   box_center=td.box_center, mask=td.mask, reward=td.reward.sum(1),
                   valid=td.valid, watch=td.reward[:, 0], half_width=td.half_width,
                   cand_state=td.cand_state, cand_mask=td.cand_mask)

    def next_rows(self) -> np.ndarray:
        """[n] row of the session's next request (request_index + 1), -1 where none."""
        s, ri = self.session, np.asarray(self.request_index, np.int64)
        same = np.r_[s[1:] == s[:-1], False] & np.r_[ri[1:] == ri[:-1] + 1, False]
        return np.where(same, np.arange(len(s)) + 1, -1)


@dataclass
class OfflineSettings:
    gamma: float = 0.9
    """Discount of the session returns (NCIS) and of the value model's TD."""
    sigmas: Sequence[float] = (0.1,)
    """NCIS kernel widths."""
    ncis_clip: float = 10.0
    n_boot: int = 200
    """Bootstrap resamples (over sessions) of the NCIS and selection-value CIs."""
    value_steps: int = 1500
    """Gradient steps of the value model (batches of 256 lists)."""
    seed: int = 0


class ListValue(nn.Module):
    """v(s) -> [len(VALUE_HEADS)] per pair state."""

    def __init__(self, hidden: Sequence[int] = (128, 128)):
        super().__init__()
        self.net = mlp([D, *hidden, len(VALUE_HEADS)])

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.net(s)


def fit_value(data: HeldOut, settings: OfflineSettings) -> ListValue:
    """The list-TD value model of `data` (the logging policy's value of showing a pair)."""
    gen = torch.Generator().manual_seed(settings.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = ListValue()
    target = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    nxt = data.next_rows()
    has = torch.from_numpy((nxt >= 0).astype(np.float32))
    nxt_t = torch.from_numpy(np.where(nxt >= 0, nxt, np.arange(len(data))))
    s = torch.from_numpy(np.ascontiguousarray(data.pair_state, np.float32))
    m = torch.from_numpy(np.ascontiguousarray(data.mask, np.float32))
    r = torch.from_numpy(np.stack([data.valid, data.watch], -1).astype(np.float32))  # [n,L,2]
    n = len(data)
    for _ in range(settings.value_steps if n else 0):
        idx = torch.randint(0, n, (min(256, n),), generator=gen)
        with torch.no_grad():
            j = nxt_t[idx]
            v_next = (target(s[j]) * m[j, :, None]).sum(1)  # [B, 2]
            y = (r[idx] * m[idx, :, None]).sum(1) + settings.gamma * has[idx, None] * v_next
        pred = (model(s[idx]) * m[idx, :, None]).sum(1)
        loss = ((pred - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        soft_update(target, model, 0.01)
    return model.eval()


def pair_actions(policy, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
    """The policy's normalised action for every pair [n, N, A] (a user-level or fixed
    policy's one action per request broadcast), clipped to [-1, 1]."""
    out = np.asarray(policy.act(user_state, pair_state), np.float64)
    if out.ndim == 2:
        out = np.broadcast_to(out[:, None, :], (*pair_state.shape[:2], A))
    assert out.shape == (*pair_state.shape[:2], A), out.shape
    return np.clip(out, -1.0, 1.0)


def selected(policy, data: HeldOut) -> np.ndarray:
    """[n, K] 1.0 on the l logged candidates with the highest fused score under the
    policy's actions (l = the logged list's length), 0 elsewhere."""
    assert data.cand_state is not None and data.cand_mask is not None
    acts = pair_actions(policy, data.user_state, data.cand_state)
    score = log_fused_score(data.cand_state[..., S.PAIR_PRED], acts)  # [n, K]
    score = np.where(data.cand_mask > 0, score, -np.inf)
    rank = np.argsort(np.argsort(-score, axis=1, kind="stable"), axis=1, kind="stable")
    n_list = np.minimum(data.mask.sum(1), data.cand_mask.sum(1))
    return ((rank < n_list[:, None]) & (data.cand_mask > 0)).astype(np.float32)


def _session_ci(per_request: np.ndarray, session: np.ndarray, n_boot: int, seed: int
                ) -> tuple[float, float, float]:
    """Mean over requests with a percentile bootstrap CI over sessions."""
    value = float(per_request.mean()) if len(per_request) else float("nan")
    if n_boot <= 0 or not len(per_request):
        return value, float("nan"), float("nan")
    _, sess = np.unique(session, return_inverse=True)
    tot = np.bincount(sess, weights=per_request)
    cnt = np.bincount(sess).astype(np.float64)
    ix = np.random.default_rng(seed).integers(0, len(tot), size=(n_boot, len(tot)))
    boots = tot[ix].sum(1) / cnt[ix].sum(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return value, float(lo), float(hi)


class OfflineEvaluator:
    """Scores policies on one held-out data set: `score(policy)` -> {metric: (value, low,
    high)}; the value model is fitted once, on the first call that needs it."""

    def __init__(self, data: HeldOut, settings: OfflineSettings | None = None):
        self.data, self.settings = data, settings or OfflineSettings()
        self._value: np.ndarray | None = None  # [n, K, 2] v of every logged candidate
        d = data
        list_reward = (d.reward * d.mask).sum(1)
        sess, returns = discounted_returns(d.session, d.request_index, list_reward,
                                           self.settings.gamma)
        first = np.flatnonzero(np.r_[True, d.session[1:] != d.session[:-1]])
        order = {s: i for i, s in enumerate(d.session[first])}
        keep = np.array([s in order for s in sess], dtype=bool)
        self._units = first[np.array([order[s] for s in np.asarray(sess)[keep]], np.int64)]
        self._returns = np.asarray(returns, np.float64)[keep]

    @property
    def units(self) -> int:
        """NCIS units: the held-out sessions (each by its first logged request)."""
        return len(self._units)

    @property
    def has_candidates(self) -> bool:
        return self.data.cand_state is not None and self.data.cand_mask is not None \
            and bool((self.data.cand_mask > 0).any())

    def candidate_values(self) -> np.ndarray:
        """[n, K, 2] fitted value of every logged candidate (fits the model once)."""
        if self._value is None:
            assert self.data.cand_state is not None
            model = fit_value(self.data, self.settings)
            with torch.no_grad():
                x = torch.from_numpy(np.ascontiguousarray(self.data.cand_state, np.float32))
                self._value = model(x).numpy().astype(np.float64)
        return self._value

    def score(self, policy) -> dict[str, tuple[float, ...]]:
        d, st = self.data, self.settings
        out: dict[str, tuple[float, ...]] = {}
        acts = pair_actions(policy, d.user_state, d.pair_state)  # [n, L, A]
        u = self._units
        for sigma in st.sigmas:
            out[f"ncis/sigma_{sigma:g}"] = ncis(
                d.action[u], d.box_center[u], d.mask[u], acts[u], self._returns,
                half_width=d.half_width, sigma=sigma, c=st.ncis_clip, n_boot=st.n_boot,
                seed=st.seed)
        m = d.mask.reshape(-1) > 0
        scores = log_fused_score(d.pair_state[..., S.PAIR_PRED], acts).reshape(-1)
        out["mtf_gauc"] = (float(mtf_gauc(np.repeat(d.user_id, L)[m], scores[m],
                                          d.valid.reshape(-1)[m],
                                          1.0 + d.reward.reshape(-1)[m])),)
        if self.has_candidates:
            sel = selected(policy, d)  # [n, K]
            value = (self.candidate_values() * sel[..., None]).sum(1)  # [n, 2]
            for i, head in enumerate(VALUE_HEADS):
                out[f"dm/{head}"] = _session_ci(value[:, i], d.session, st.n_boot, st.seed)
        return out
