"""The batched critic ensemble equals separate layers; actors are scriptable."""

from __future__ import annotations

import torch
from torch import nn

from model.networks import CriticEnsemble, EnsembleLinear, PairActor, UserActor
from mtf import schema as S


def test_ensemble_linear_equals_separate_linears_forward_and_grad():
    torch.manual_seed(0)
    e, m, i, o = 4, 7, 5, 3
    ens = EnsembleLinear(e, i, o)
    sep = [nn.Linear(i, o) for _ in range(e)]
    with torch.no_grad():
        for k, lin in enumerate(sep):
            lin.weight.copy_(ens.weight[k].T)
            lin.bias.copy_(ens.bias[k, 0])
    x = torch.randn(e, m, i)
    y = ens(x)
    y_sep = torch.stack([lin(x[k]) for k, lin in enumerate(sep)])
    assert torch.allclose(y, y_sep, atol=1e-6)
    (y ** 2).sum().backward()
    (y_sep ** 2).sum().backward()
    for k, lin in enumerate(sep):
        assert torch.allclose(ens.weight.grad[k].T, lin.weight.grad, atol=1e-5)
        assert torch.allclose(ens.bias.grad[k, 0], lin.bias.grad, atol=1e-5)


def test_critic_ensemble_equals_separate_mlps():
    torch.manual_seed(1)
    crit = CriticEnsemble(num_sets=2, per_set=3, state_dim=6, action_dim=2, hidden=(8, 8))
    s, a = torch.randn(5, 6), torch.randn(5, 2)
    q = crit(s, a)
    assert q.shape == (2, 3, 5)
    for k in range(6):
        layers = []
        for j, layer in enumerate(crit.layers):
            lin = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(layer.weight[k].T)
                lin.bias.copy_(layer.bias[k, 0])
            layers.append(lin)
            if j < len(crit.layers) - 1:
                layers.append(nn.ReLU())
        q_k = nn.Sequential(*layers)(torch.cat([s, a], -1)).squeeze(-1)
        assert torch.allclose(q.view(6, 5)[k], q_k, atol=1e-5)


def test_actors_are_bounded_and_scriptable():
    pa = PairActor(hidden=(16, 8), user_tower_hidden=4)
    x = torch.randn(11, S.PAIR_STATE_DIM) * 10
    out = pa(x)
    assert out.shape == (11, S.ACTION_DIM) and out.abs().max() <= 1.0
    assert torch.allclose(torch.jit.script(pa)(x), out, atol=1e-6)
    ua = UserActor(hidden=(8,))
    u = torch.randn(3, S.USER_STATE_DIM)
    assert torch.allclose(torch.jit.script(ua)(u), ua(u), atol=1e-6)
