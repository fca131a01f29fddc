"""Networks (ALGORITHM.md section 3): the pair-level actor, a user-level actor and the
batched critic ensemble.

Shapes: M pairs (or requests), D state dim, A action dim, E = q * m ensemble members
(q critic sets of m critics each), set-major: member e = i * m + j is critic j of set i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mtf import schema as S


def mlp(sizes: Sequence[int], out_act: nn.Module | None = None) -> nn.Sequential:
    """Linear layers of widths `sizes` with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class PairActor(nn.Module):
    """mu(s_tj) -> [-1, 1]^A for every enhanced pair state (ALGORITHM.md section 3, [R]).

    A user tower reads the user block (the first `user_dim` values, shared by the pairs of a
    request), its output is concatenated with the rest of the pair state (item block, MTL
    predictions, candidate-set features), then an MLP (`hidden`) and a tanh head.
    Scriptable with `torch.jit.script` (tested for parity); accepts any leading dims.
    """

    def __init__(self, state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 user_dim: int = S.D_USER, user_tower_hidden: int = 64,
                 hidden: Sequence[int] = (256, 128)):
        super().__init__()
        assert 0 < user_dim < state_dim, (user_dim, state_dim)
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.user_dim = user_dim
        self.user_tower = nn.Sequential(nn.Linear(user_dim, user_tower_hidden), nn.ReLU())
        self.head = mlp([user_tower_hidden + state_dim - user_dim, *hidden, action_dim],
                        nn.Tanh())

    def forward(self, pair_state: torch.Tensor) -> torch.Tensor:
        assert pair_state.shape[-1] == self.state_dim
        u = self.user_tower(pair_state[..., :self.user_dim])  # [M, H_user]
        rest = pair_state[..., self.user_dim:]  # [M, D - D_USER]
        return self.head(torch.cat([u, rest], dim=-1))  # [M, A] in [-1, 1]


class UserActor(nn.Module):
    """mu(s_t) -> [-1, 1]^A from the user-level state (UnifiedRL / BatchRL-MTF baselines and
    the simulator's user-level serving test). Scriptable."""

    def __init__(self, state_dim: int = S.USER_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 hidden: Sequence[int] = (256, 128)):
        super().__init__()
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.net = mlp([state_dim, *hidden, action_dim], nn.Tanh())

    def forward(self, user_state: torch.Tensor) -> torch.Tensor:
        assert user_state.shape[-1] == self.state_dim
        return self.net(user_state)  # [B, A]


class EnsembleLinear(nn.Module):
    """E independent linear layers as one batched matmul (CORL's VectorizedLinear).

    weight [E, in, out], bias [E, 1, out]. Input either per member x [E, M, in], or shared by
    all members x [M, in] (one broadcast matmul, no E-fold copy of the input). -> [E, M, out].
    """

    def __init__(self, ensemble_size: int, in_features: int, out_features: int):
        super().__init__()
        self.ensemble_size = ensemble_size
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's init, member by member: weight[e].T is nn.Linear's [out, in] weight, so
        # kaiming_uniform_(a=sqrt(5)) sees fan_in = in; bias ~ U(-1/sqrt(in), 1/sqrt(in)).
        for e in range(self.ensemble_size):
            nn.init.kaiming_uniform_(self.weight[e].T, a=math.sqrt(5))
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] == self.in_features, (x.shape, self.in_features)
        if x.dim() == 2:  # shared input [M, in]: [M, in] @ [E, in, out] broadcasts
            return torch.matmul(x, self.weight) + self.bias  # [E, M, out]
        assert x.dim() == 3 and x.shape[0] == self.ensemble_size, x.shape
        return torch.baddbmm(self.bias, x, self.weight)  # [E, M, out]

    def extra_repr(self) -> str:
        return (f"ensemble_size={self.ensemble_size}, in_features={self.in_features}, "
                f"out_features={self.out_features}")


class CriticEnsemble(nn.Module):
    """q sets x m critics Q_ij(s, a), one batched MLP (ALGORITHM.md section 3).

    forward(state, action) -> Q [num_sets, per_set, M]. state [M, D] / action [M, A] are shared
    by all members; either may instead be per member, [E, M, D] / [E, M, A] (E = q * m,
    set-major), e.g. for per-critic target actions.
    """

    def __init__(self, num_sets: int = 2, per_set: int = 10,
                 state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.num_sets = num_sets
        self.per_set = per_set
        self.state_dim = state_dim
        self.action_dim = action_dim
        sizes = [state_dim + action_dim, *hidden, 1]
        self.layers = nn.ModuleList(
            [EnsembleLinear(self.ensemble_size, sizes[i], sizes[i + 1])
             for i in range(len(sizes) - 1)])

    @property
    def ensemble_size(self) -> int:
        return self.num_sets * self.per_set

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        e = self.ensemble_size
        assert state.shape[-1] == self.state_dim and action.shape[-1] == self.action_dim, (
            state.shape, action.shape)
        if state.dim() == 3 or action.dim() == 3:  # per-member inputs: broadcast the other
            state = state.expand(e, *state.shape[-2:]) if state.dim() == 2 else state
            action = action.expand(e, *action.shape[-2:]) if action.dim() == 2 else action
            assert state.shape[:2] == action.shape[:2] and state.shape[0] == e, (
                state.shape, action.shape)
        else:
            assert state.dim() == 2 and state.shape[0] == action.shape[0], (
                state.shape, action.shape)
        m = state.shape[-2]
        x = torch.cat([state, action], dim=-1)  # [M, D + A] or [E, M, D + A]
        for layer in self.layers[:-1]:
            x = layer(x).relu_()  # [E, M, H]; in place: the layer's backward needs only its input
        q = self.layers[-1](x).squeeze(-1)  # [E, M]
        assert q.shape == (e, m), q.shape
        return q.view(self.num_sets, self.per_set, m)  # [q, m, M]
