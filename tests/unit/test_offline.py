"""The one offline evaluation (model/offline.py): the selection of a policy among the logged
candidates by hand, the selection value with known candidate values, the list-TD value model
on data with a known answer, and NCIS / MTF-GAUC equal to the metric functions."""

from __future__ import annotations

import numpy as np
import pytest

from core import schema as S
from core.policy import CallablePolicy, FixedWeightsPolicy
from model.metrics import mtf_gauc, ncis
from model.offline import HeldOut, OfflineEvaluator, OfflineSettings, fit_value, selected

L, A, D, DU = S.LIST_LEN, S.ACTION_DIM, S.PAIR_STATE_DIM, S.USER_STATE_DIM


def held_out(n: int = 40, k: int = 8, seed: int = 0, session_len: int = 2) -> HeldOut:
    rng = np.random.default_rng(seed)
    cand = rng.random((n, k, D)).astype(np.float32)
    # predictions in a narrow band: an action inside the box can reorder the candidates
    cand[..., S.PAIR_PRED] = 0.4 + 0.02 * rng.random((n, k, S.NUM_HEADS))
    centre = np.zeros((n, L, A), np.float32)
    return HeldOut(
        session=np.repeat(np.arange(n // session_len), session_len),
        user_id=np.repeat(np.arange(n // session_len), session_len).astype(np.int64),
        request_index=np.tile(np.arange(session_len), n // session_len).astype(np.int64),
        user_state=rng.random((n, DU)).astype(np.float32), pair_state=cand[:, :L].copy(),
        action=rng.uniform(-0.1, 0.1, (n, L, A)).astype(np.float32), box_center=centre,
        mask=np.ones((n, L), np.float32), reward=rng.random((n, L)).astype(np.float32),
        valid=(rng.random((n, L)) < 0.5).astype(np.float32),
        watch=rng.random((n, L)).astype(np.float32), half_width=0.15,
        cand_state=cand, cand_mask=np.ones((n, k), np.float32))


def promote(slots: list[int]):
    """A pair-level policy giving candidates of the given slots the highest fused score:
    power 0 on every objective (score 0, the maximum of a sum of power * log(obj + bias)
    with obj + bias < 1), power 1 elsewhere."""
    def act(user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        n, k = pair_state.shape[:2]
        a = np.zeros((n, k, A))
        a[..., :5] = 0.0  # power 1
        a[:, [j for j in slots if j < k], :5] = -1.0  # power 0
        return a
    return CallablePolicy(act, "pair", "promote")


def test_selected_is_the_top_l_of_the_policy_scores():
    data = held_out()
    sel = selected(promote([7, 6, 5, 4, 3]), data)
    want = np.zeros_like(sel)
    want[:, 3:] = 1.0
    np.testing.assert_array_equal(sel, want)
    # a fixed policy keeps the logged order's top l only when the predictions decide it the
    # same way: here every row selects exactly l candidates
    assert (selected(FixedWeightsPolicy(), data).sum(1) == L).all()


def test_selection_value_sums_the_values_of_the_selected_candidates():
    data = held_out()
    ev = OfflineEvaluator(data, OfflineSettings(n_boot=0))
    values = np.zeros((len(data), 8, 2))
    values[:, :, 0] = np.arange(8)[None, :]  # valid value = slot number
    values[:, :, 1] = 1.0
    ev._value = values  # known candidate values instead of a fitted model
    low, high = ev.score(promote([0, 1, 2, 3, 4])), ev.score(promote([7, 6, 5, 4, 3]))
    assert low["dm/valid"][0] == pytest.approx(0 + 1 + 2 + 3 + 4)
    assert high["dm/valid"][0] == pytest.approx(3 + 4 + 5 + 6 + 7)
    assert high["dm/watch"][0] == pytest.approx(L)


def test_value_model_learns_the_list_td_value():
    """Sessions of 2 requests: the valid value of a first-request pair is its reward plus
    gamma times the next list's reward; of a second-request pair, its reward. Rewards are a
    state feature, so the fit can recover them."""
    data = held_out(n=800, k=L, seed=1)
    f = S.OFFSET_CAND  # the reward's feature
    data.valid = data.pair_state[..., f].copy()
    data.watch = np.zeros_like(data.valid)
    model = fit_value(data, OfflineSettings(gamma=0.5, value_steps=600, seed=0))
    import torch

    with torch.no_grad():
        v = model(torch.from_numpy(data.pair_state)).numpy()[..., 0]  # [n, L]
    second = data.request_index == 1
    # list sums: what list-level TD identifies
    got2, want2 = v[second].sum(1), data.valid[second].sum(1)
    assert np.corrcoef(got2, want2)[0, 1] > 0.8  # measured 0.91
    first = ~second
    want1 = data.valid[first].sum(1) + 0.5 * data.valid[np.flatnonzero(first) + 1].sum(1)
    assert abs(v[first].sum(1).mean() - want1.mean()) < 0.15 * want1.mean()


def test_ncis_and_gauc_are_the_metric_functions():
    data = held_out(session_len=1)
    ev = OfflineEvaluator(data, OfflineSettings(gamma=0.9, sigmas=(0.1,), n_boot=10,
                                                value_steps=20))
    got = ev.score(FixedWeightsPolicy())
    acts = np.broadcast_to(FixedWeightsPolicy().act(data.user_state, data.pair_state)[:, None],
                           (len(data), L, A))
    want = ncis(data.action, data.box_center, data.mask, acts, data.reward.sum(1),
                half_width=0.15, sigma=0.1, c=10.0, n_boot=10, seed=0)
    assert got["ncis/sigma_0.1"] == pytest.approx(want)
    from core.fusion import log_fused_score

    scores = log_fused_score(data.pair_state[..., S.PAIR_PRED], acts).reshape(-1)
    assert got["mtf_gauc"][0] == pytest.approx(mtf_gauc(
        np.repeat(data.user_id, L), scores, data.valid.reshape(-1),
        1.0 + data.reward.reshape(-1)))
