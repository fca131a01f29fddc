"""Networks: the pair-level actor, a user-level actor and the batched critic ensemble."""

from __future__ import annotations

import math

import torch
from torch import nn

from mtf import schema as S


def mlp(sizes: list[int], out_act: nn.Module | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if out_act is not None:
        layers.append(out_act)
    return nn.Sequential(*layers)


class PairActor(nn.Module):
    """mu(s_tj) -> [-1, 1]^A for every enhanced pair state (ALGORITHM.md section 3).

    A user tower reads the user block (the first D_USER values, shared by the request's
    pairs), its output is concatenated with the rest of the pair state (item block, MTL
    predictions, candidate-set features), then an MLP and a tanh head.
    """

    def __init__(self, state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 user_dim: int = S.D_USER, user_tower_hidden: int = 64,
                 hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        self.user_dim = user_dim
        self.user_tower = nn.Sequential(nn.Linear(user_dim, user_tower_hidden), nn.ReLU())
        self.head = mlp([user_tower_hidden + state_dim - user_dim, *hidden, action_dim],
                        nn.Tanh())

    def forward(self, pair_state: torch.Tensor) -> torch.Tensor:
        # pair_state [M, D] -> [M, A]
        u = self.user_tower(pair_state[:, :self.user_dim])
        return self.head(torch.cat([u, pair_state[:, self.user_dim:]], dim=-1))


class UserActor(nn.Module):
    """mu(s_t) -> [-1, 1]^A from the user-level state (UnifiedRL / BatchRL-MTF)."""

    def __init__(self, state_dim: int = S.USER_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 hidden: tuple[int, ...] = (256, 128)):
        super().__init__()
        self.net = mlp([state_dim, *hidden, action_dim], nn.Tanh())

    def forward(self, user_state: torch.Tensor) -> torch.Tensor:
        return self.net(user_state)


class EnsembleLinear(nn.Module):
    """E independent linear layers as one batched matmul: x [E, M, in] -> [E, M, out]."""

    def __init__(self, ensemble_size: int, in_features: int, out_features: int):
        super().__init__()
        self.ensemble_size, self.in_features, self.out_features = (
            ensemble_size, in_features, out_features)
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_features, out_features))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # the same init as nn.Linear, member by member
        bound = 1.0 / math.sqrt(self.in_features)
        for e in range(self.ensemble_size):
            nn.init.kaiming_uniform_(self.weight[e].T, a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 3 and x.shape[0] == self.ensemble_size, x.shape
        return torch.baddbmm(self.bias, x, self.weight)  # [E, M, out]


class CriticEnsemble(nn.Module):
    """q sets x m critics Q_ij(s, a), all in one batched MLP (ALGORITHM.md section 3)."""

    def __init__(self, num_sets: int = 2, per_set: int = 10,
                 state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 hidden: tuple[int, ...] = (256, 256)):
        super().__init__()
        self.num_sets, self.per_set = num_sets, per_set
        e = num_sets * per_set
        sizes = [state_dim + action_dim, *hidden, 1]
        self.layers = nn.ModuleList(
            [EnsembleLinear(e, sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)])

    @property
    def ensemble_size(self) -> int:
        return self.num_sets * self.per_set

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """state [M, D], action [M, A] -> Q [num_sets, per_set, M]."""
        x = torch.cat([state, action], dim=-1)  # [M, D + A]
        x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)  # [E, M, D + A]
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        q = x.squeeze(-1)  # [E, M]
        assert q.shape == (self.ensemble_size, state.shape[0]), q.shape
        return q.view(self.num_sets, self.per_set, -1)
