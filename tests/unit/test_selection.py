"""The selection-aware actor objective (docs/ALGORITHM.md section 9): the soft top-l
membership against hand-computed values, its implicit gradient, the equivalence with the
paper's loss when the membership is the logged exposure, the selected-list TD target, and
that an actor trained on it moves valuable candidates into the list."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from core import schema as S
from core.fusion import log_fused_score
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.losses import actor_loss, fused_log_score, selection_actor_loss, soft_top_l

D, A, L = S.PAIR_STATE_DIM, S.ACTION_DIM, S.LIST_LEN


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_soft_top_l_two_candidates_by_hand():
    # z = (1, 0), l = 1, T = 1: by symmetry t = 0.5, p = (sig(0.5), sig(-0.5))
    z = torch.tensor([[1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    p = soft_top_l(z, torch.ones(1, 2), torch.tensor([1.0]), temperature=1.0)
    torch.testing.assert_close(p.detach(), torch.tensor([[sig(0.5), sig(-0.5)]],
                                                        dtype=torch.float64))
    # dp0/dz0 = p0 (1 - p0) / T * (1 - g0), g = (1/2, 1/2) (equal p(1-p)): 0.5 sig'(0.5)
    (g0,) = torch.autograd.grad(p[0, 0], z)
    s = sig(0.5) * (1 - sig(0.5))
    torch.testing.assert_close(g0, torch.tensor([[0.5 * s, -0.5 * s]], dtype=torch.float64))


@pytest.mark.parametrize("temperature", [0.01, 0.1, 1.0])
def test_soft_top_l_sums_to_l_on_present_slots(temperature: float):
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 9, generator=gen) * 2
    mask = (torch.rand(6, 9, generator=gen) < 0.8).float()
    mask[:, :3] = 1
    mask[5] = 0  # a row without candidates
    l_sel = torch.tensor([1.0, 2.0, 3.0, 5.0, 20.0, 3.0])  # 20: more than present, clamped
    p = soft_top_l(z, mask, l_sel, temperature)
    want = torch.minimum(l_sel, mask.sum(-1))
    torch.testing.assert_close(p.sum(-1), want, atol=1e-4, rtol=0)
    assert (p[mask == 0] == 0).all() and ((p >= 0) & (p <= 1)).all()


def test_soft_top_l_tends_to_the_hard_top_l():
    z = torch.tensor([[0.3, 2.0, -1.0, 1.1, 0.9]])
    p = soft_top_l(z, torch.ones(1, 5), torch.tensor([2.0]), temperature=1e-3)
    torch.testing.assert_close(p, torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0]]), atol=1e-4, rtol=0)


def test_selection_gradient_pushes_a_valued_candidate_up_and_a_poor_one_down():
    # 4 candidates, l = 2; the critic values the 3rd (below the margin) most, the 2nd
    # (inside the list) least: the gradient of sum_j p_j Q_j raises z_2, lowers z_1
    z = torch.tensor([[2.0, 1.0, 0.8, -1.0]], requires_grad=True)
    q = torch.tensor([[1.0, -2.0, 3.0, 0.0]])
    p = soft_top_l(z, torch.ones(1, 4), torch.tensor([2.0]), temperature=0.3)
    (grad,) = torch.autograd.grad((p * q).sum(), z)
    assert grad[0, 2] > 0 and grad[0, 1] < 0
    assert abs(float(grad.sum())) < 1e-5  # moving every score together changes nothing


def test_fused_log_score_matches_numpy():
    rng = np.random.default_rng(1)
    preds, act = rng.random((3, 4, S.NUM_HEADS)), rng.uniform(-1.2, 1.2, (3, 4, A))
    got = fused_log_score(torch.tensor(preds), torch.tensor(act)).numpy()
    np.testing.assert_allclose(got, log_fused_score(preds, act), rtol=1e-12)


def test_selection_loss_with_the_logged_exposure_is_the_paper_loss():
    gen = torch.Generator().manual_seed(3)
    b, k, n_sets, m = 4, 7, 2, 3
    q = torch.randn(n_sets, m, b, k, generator=gen)
    pen = torch.rand(b, k, generator=gen)
    l_per_row = torch.tensor([5.0, 5.0, 3.0, 1.0])
    exposed = (torch.arange(k)[None, :] < l_per_row[:, None]).float()
    w = torch.tensor([1.0, 0.5])
    got = selection_actor_loss(q, pen, exposed, exposed, l_per_row, w, eta=0.7, lam=0.4)
    keep = exposed.reshape(-1) > 0
    want = actor_loss(q.reshape(n_sets, m, -1)[..., keep], pen.reshape(-1)[keep], w,
                      eta=0.7, lam=0.4)
    for name in ("total", "q_term", "box_term", "std_term"):
        torch.testing.assert_close(getattr(got, name), getattr(want, name))


class ValueOfFeature(nn.Module):
    """A frozen stand-in critic: Q = state[:, j] for every critic of every set."""

    def __init__(self, feature: int, n_sets: int, per_set: int):
        super().__init__()
        self.feature, self.n_sets, self.per_set = feature, n_sets, per_set
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        q = s[:, self.feature] + 0.0 * a.sum(-1) + 0.0 * self.dummy
        return q.expand(self.n_sets, self.per_set, -1)


def candidate_batch(b: int, k: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Requests of k candidates whose predictions are close (so that actions can reorder
    them) and the exposed list = the first l of them."""
    state = torch.rand(b, k, D, generator=gen)
    state[..., S.PAIR_PRED] = 0.3 + 0.05 * torch.rand(b, k, S.NUM_HEADS, generator=gen)
    centre = torch.zeros(b, k, A)
    mask = torch.ones(b, L)
    return {"pair_state": state[:, :L].clone(), "action": torch.zeros(b, L, A),
            "box_center": centre[:, :L].clone(), "mask": mask,
            "reward": torch.zeros(b, 2, L), "next_pair_state": state[:, :L].clone(),
            "next_box_center": centre[:, :L].clone(), "next_mask": torch.zeros(b, L),
            "done": torch.ones(b), "cand_state": state, "cand_center": centre,
            "cand_mask": torch.ones(b, k)}


def test_selection_actor_moves_valued_candidates_into_the_list():
    """With a critic that values candidates by one state feature, the selection-aware actor
    learns actions whose fused scores put the high-value candidates in the top l; the
    paper's objective (the same critic, the exposed pairs only) cannot."""
    feature = S.OFFSET_CAND + S.NUM_HEADS - 1  # any state feature the actor reads
    gen = torch.Generator().manual_seed(0)
    batch = candidate_batch(64, 12, gen)
    test = candidate_batch(256, 12, gen)

    def overlap(rl: EnhancedRL) -> float:
        s = test["cand_state"]
        score = fused_log_score(s[..., S.PAIR_PRED], torch.as_tensor(rl.act(s)))
        top = score.argsort(-1, descending=True)[:, :L]
        best = s[..., feature].argsort(-1, descending=True)[:, :L]
        return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / L
                              for x, y in zip(top, best)]))

    result = {}
    for objective in ("exposed", "selection"):
        cfg = EnhancedRLConfig(num_critic_sets=2, critics_per_set=2, critic_hidden=(8,),
                               actor_hidden=(32,), user_tower_hidden=8, actor_lr=3e-3,
                               half_width=1.0, eta=0.0, lam=0.0, actor_objective=objective,
                               selection_temperature=0.05, selection_candidates=12, seed=0)
        rl = EnhancedRL(cfg)
        rl.critic = ValueOfFeature(feature, 2, 2)
        before = overlap(rl)
        for _ in range(150):
            rl._actor_step(batch, 64, L)
        result[objective] = (before, overlap(rl))
    before, after = result["selection"]
    assert after > before + 0.3, result
    assert result["exposed"][1] < before + 0.1, result


def test_selected_list_target_equals_the_logged_one_when_the_selection_is_the_list():
    """td_next = 'selected_list' with the next request's exposed pairs as its first l
    candidates and the rest far below them in score: p' = 1 on the list, so the target is
    the paper's list target."""
    gen = torch.Generator().manual_seed(4)
    b, k = 8, 9
    state = torch.rand(b, k, D, generator=gen)
    state[:, :L, S.PAIR_PRED] = 0.9  # high predictions: the top l under any action
    state[:, L:, S.PAIR_PRED] = 0.0
    state[:, :, S.OFFSET_PRED + S.HEADS.index("skip")] = 0.0
    state[:, L:, S.OFFSET_PRED + S.HEADS.index("skip")] = 1.0  # noskip 0 as well
    centre = torch.zeros(b, k, A)
    batch = {"pair_state": torch.rand(b, L, D, generator=gen), "action": torch.zeros(b, L, A),
             "box_center": torch.zeros(b, L, A), "mask": torch.ones(b, L),
             "reward": torch.rand(b, 2, L, generator=gen),
             "next_pair_state": state[:, :L].clone(), "next_box_center": centre[:, :L].clone(),
             "next_mask": torch.ones(b, L), "done": torch.tensor([0.0] * 6 + [1.0] * 2),
             "next_cand_state": state, "next_cand_center": centre,
             "next_cand_mask": torch.ones(b, k)}
    small = dict(num_critic_sets=2, critics_per_set=2, critic_hidden=(8,), actor_hidden=(8,),
                 user_tower_hidden=4, seed=1, selection_temperature=1e-3)
    logged = EnhancedRL(EnhancedRLConfig(**small))
    selected = EnhancedRL(EnhancedRLConfig(**small, td_next="selected_list"))
    y_logged, _ = logged._critic_target(batch, b, L)
    y_selected, _ = selected._critic_target(batch, b, L)
    torch.testing.assert_close(y_selected, y_logged, atol=1e-4, rtol=1e-4)


def test_selection_objective_needs_the_candidates_in_the_batch():
    rl = EnhancedRL(EnhancedRLConfig(critics_per_set=2, critic_hidden=(8,), actor_hidden=(8,),
                                     user_tower_hidden=4, actor_objective="selection"))
    batch = candidate_batch(4, 6, torch.Generator().manual_seed(0))
    del batch["cand_mask"]
    with pytest.raises(AssertionError, match="cand_mask"):
        rl.update(batch)


def test_config_rejects_unknown_objectives():
    with pytest.raises(ValueError, match="actor_objective"):
        EnhancedRLConfig(actor_objective="both")
    with pytest.raises(ValueError, match="td_next"):
        EnhancedRLConfig(td_next="oracle")
    with pytest.raises(ValueError, match="td_mode"):
        EnhancedRLConfig(td_next="selected_list", td_mode="pair")
