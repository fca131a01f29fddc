"""The batched critic ensemble equals separate layers / MLPs (forward and gradients); the
actors are bounded, use the layout they claim, and script with parity."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from core import schema as S
from model import networks
from model.networks import (
    CriticEnsemble,
    EnsembleLinear,
    FactorizedPairActor,
    PairActor,
    UserActor,
)


def _copy_member(layer: EnsembleLinear, k: int) -> nn.Linear:
    lin = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        lin.weight.copy_(layer.weight[k].T)
        lin.bias.copy_(layer.bias[k, 0])
    return lin


@pytest.mark.parametrize("shared_input", [False, True])
def test_ensemble_linear_equals_separate_linears_forward_and_grad(shared_input):
    torch.manual_seed(0)
    e, m, i, o = 4, 7, 5, 3
    ens = EnsembleLinear(e, i, o)
    sep = [_copy_member(ens, k) for k in range(e)]
    x = torch.randn(m, i) if shared_input else torch.randn(e, m, i)
    x_ens = x.clone().requires_grad_(True)
    x_sep = x.clone().requires_grad_(True)
    y = ens(x_ens)
    assert y.shape == (e, m, o)
    y_sep = torch.stack([lin(x_sep if shared_input else x_sep[k]) for k, lin in enumerate(sep)])
    torch.testing.assert_close(y, y_sep, atol=1e-6, rtol=1e-6)
    g = torch.randn(e, m, o)  # a non-trivial upstream gradient
    (y * g).sum().backward()
    (y_sep * g).sum().backward()
    for k, lin in enumerate(sep):
        torch.testing.assert_close(ens.weight.grad[k].T, lin.weight.grad, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ens.bias.grad[k, 0], lin.bias.grad, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_ens.grad, x_sep.grad, atol=1e-5, rtol=1e-5)


def test_ensemble_linear_init_like_nn_linear_per_member():
    torch.manual_seed(0)
    ens = EnsembleLinear(6, 64, 32)
    bound = 1.0 / math.sqrt(64)  # nn.Linear: kaiming_uniform(a=sqrt 5) -> U(+-1/sqrt(in))
    assert ens.weight.abs().max() <= bound and ens.bias.abs().max() <= bound
    assert ens.weight.std() > 0.8 * bound / math.sqrt(3)  # uniform std = bound / sqrt(3)
    assert not torch.equal(ens.weight[0], ens.weight[1])  # members differ


def _member_mlp(crit: CriticEnsemble, k: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for j, layer in enumerate(crit.layers):
        layers.append(_copy_member(layer, k))
        if j < len(crit.layers) - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@pytest.mark.parametrize("chunked", [False, True])
@pytest.mark.parametrize("per_member", ["none", "state", "action", "both"])
def test_critic_ensemble_equals_separate_mlps_forward_and_grad(per_member, chunked,
                                                               monkeypatch):
    torch.manual_seed(1)
    n_sets, per_set, d, a_dim, m = 2, 3, 6, 2, 5
    e = n_sets * per_set
    crit = CriticEnsemble(n_sets, per_set, state_dim=d, action_dim=a_dim, hidden=(8, 8))
    if chunked:  # groups of 4 members: chunks of 4 and 2
        monkeypatch.setattr(networks, "CPU_CHUNK_BYTES", 4 * 8 * m * 4)
    assert crit.members_per_chunk(m, torch.device("cpu")) == (4 if chunked else e)
    mlps = [_member_mlp(crit, k) for k in range(e)]
    s = torch.randn(e, m, d) if per_member in ("state", "both") else torch.randn(m, d)
    a_shape = (e, m, a_dim) if per_member in ("action", "both") else (m, a_dim)
    a = torch.randn(*a_shape, requires_grad=True)  # grads flow to the action
    a_sep = a.detach().clone().requires_grad_(True)
    q = crit(s, a)
    assert q.shape == (n_sets, per_set, m)
    pick = lambda t, k: t[k] if t.dim() == 3 else t  # noqa: E731
    q_sep = torch.stack([mlps[k](torch.cat([pick(s, k), pick(a_sep, k)], -1)).squeeze(-1)
                         for k in range(e)]).view(n_sets, per_set, m)  # set-major members
    torch.testing.assert_close(q, q_sep, atol=1e-5, rtol=1e-5)
    g = torch.randn(n_sets, per_set, m)
    (q * g).sum().backward()
    (q_sep * g).sum().backward()
    for k in range(e):
        for j, layer in enumerate(crit.layers):
            lin = mlps[k][2 * j]
            torch.testing.assert_close(layer.weight.grad[k].T, lin.weight.grad,
                                       atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(layer.bias.grad[k, 0], lin.bias.grad,
                                       atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.grad, a_sep.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("per_member", [False, True])
def test_critic_ensemble_takes_zero_pairs(per_member):
    crit = CriticEnsemble(2, 3, state_dim=4, action_dim=2, hidden=(8,))
    s = torch.randn(6, 0, 4) if per_member else torch.randn(0, 4)
    assert crit(s, torch.randn(0, 2)).shape == (2, 3, 0)


def test_critic_ensemble_rejects_bad_shapes():
    crit = CriticEnsemble(2, 2, state_dim=4, action_dim=2, hidden=(8,))
    with pytest.raises(AssertionError):
        crit(torch.randn(3, 5), torch.randn(3, 2))  # wrong state dim
    with pytest.raises(AssertionError):
        crit(torch.randn(3, 4), torch.randn(2, 2))  # pair count differs
    with pytest.raises(AssertionError):
        crit(torch.randn(3, 3, 4), torch.randn(3, 2))  # 3 members, ensemble has 4


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript deprecation notice
        return torch.jit.script(module)


def test_pair_actor_bounded_layout_and_scriptable():
    torch.manual_seed(2)
    pa = PairActor(hidden=(16, 8), user_tower_hidden=4)
    x = torch.randn(11, S.PAIR_STATE_DIM) * 10
    out = pa(x)
    assert out.shape == (11, S.ACTION_DIM) and out.abs().max() <= 1.0
    # the user block (through the tower) and the rest both matter
    x_user, x_item = x.clone(), x.clone()
    x_user[:, : S.D_USER] += 1.0
    x_item[:, S.OFFSET_PRED] += 1.0
    assert not torch.allclose(pa(x_user), out) and not torch.allclose(pa(x_item), out)
    # leading dims are free: [B, L, D] -> [B, L, A]
    torch.testing.assert_close(pa(x[:10].view(2, 5, -1)), out[:10].view(2, 5, -1))
    scripted = _script(pa)
    assert (scripted(x) - out).abs().max() <= 1e-6
    with pytest.raises(AssertionError):
        pa(torch.randn(3, S.PAIR_STATE_DIM - 1))


def _one_request(n: int, scale: float) -> torch.Tensor:
    """Pair states of n candidates of one request (every row has row 0's user block)."""
    x = torch.randn(n, S.PAIR_STATE_DIM) * scale
    x[:, : S.D_USER] = x[:1, : S.D_USER]
    return x


def test_pair_actor_request_path_equals_forward_for_one_request():
    torch.manual_seed(5)
    pa = PairActor(hidden=(16, 8), user_tower_hidden=4)
    x = _one_request(30, 3.0)
    out = pa(x)
    torch.testing.assert_close(pa.forward_request(x), out, atol=1e-6, rtol=1e-6)
    # the user block is read from row 0 only; the rest of every row matters per row
    y = x.clone()
    y[1:, : S.D_USER] += 1.0
    torch.testing.assert_close(pa.forward_request(y), out, atol=1e-6, rtol=1e-6)
    z = x.clone()
    z[7, S.OFFSET_ITEM] += 1.0
    changed = (pa.forward_request(z) - out).abs().amax(-1) > 1e-6
    assert changed.tolist() == [i == 7 for i in range(30)]
    assert (_script(pa).forward_request(x) - out).abs().max() <= 1e-6
    with pytest.raises(AssertionError):
        pa.forward_request(x.view(3, 10, -1))  # one request is a 2-d [N, D]


def test_user_actor_bounded_and_scriptable():
    torch.manual_seed(3)
    ua = UserActor(hidden=(8,))
    u = torch.randn(3, S.USER_STATE_DIM) * 10
    out = ua(u)
    assert out.shape == (3, S.ACTION_DIM) and out.abs().max() <= 1.0
    assert (_script(ua)(u) - out).abs().max() <= 1e-6


def test_factorized_actor_request_equals_forward_bounded_and_scriptable():
    torch.manual_seed(4)
    fa = FactorizedPairActor(user_hidden=(16, 8), pair_hidden=6)
    x = _one_request(40, 5.0)
    out = fa(x)
    assert out.shape == (40, S.ACTION_DIM) and out.abs().max() <= 1.0
    torch.testing.assert_close(fa.forward_request(x), out, atol=1e-6, rtol=1e-6)
    # forward_request reads the user block of row 0 only; forward reads every row's
    y = x.clone()
    y[1:, : S.D_USER] += 1.0
    torch.testing.assert_close(fa.forward_request(y), out, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(fa(y)[1:], out[1:])
    # the rest of the pair state matters per candidate
    z = x.clone()
    z[3, S.OFFSET_PRED] += 1.0
    changed = (fa.forward_request(z) - out).abs().amax(-1) > 1e-5
    assert changed.tolist() == [i == 3 for i in range(40)]
    # leading dims are free in forward; scripted, both methods keep parity
    torch.testing.assert_close(fa(x.view(4, 10, -1)), out.view(4, 10, -1))
    scripted = _script(fa)
    assert (scripted(x) - out).abs().max() <= 1e-6
    assert (scripted.forward_request(x) - out).abs().max() <= 1e-6
    with pytest.raises(AssertionError):
        fa.forward_request(x.view(4, 10, -1))  # one request is a 2-d [N, D]
