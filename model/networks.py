"""Networks (docs/ALGORITHM.md section 3): the pair-level actor, a user-level actor and the
batched critic ensemble.

Shapes: M pairs (or requests), D state dim, A action dim, E = q * m ensemble members
(q critic sets of m critics each), set-major: member e = i * m + j is critic j of set i.

The critic ensemble is the learner's hot path (20 critics on every pair, twice per update).
Its first layer reads the same (state, action) for every member, so it runs as ONE GEMM
[M, in] @ [in, E * H] (no E-fold copy or broadcast of the input, one large weight-gradient
GEMM in the backward); deeper layers are one batched matmul with the bias fused in
(`baddbmm`). `FactorizedPairActor` is the serving-friendly variant of the pair actor: its
user tower runs once per request instead of once per candidate. Both pair-level actors have
a `forward_request` for the rows of one request (the serving case), the same maths as
`forward` with the per-request work done once (bench/README.md has the latencies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from core import schema as S


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
    """mu(s_tj) -> [-1, 1]^A for every enhanced pair state (docs/ALGORITHM.md section 3, [R]).

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

    @torch.jit.export
    def forward_request(self, pair_state: torch.Tensor) -> torch.Tensor:
        """pair_state [N, D], all rows of ONE request (the user block is read from row 0)
        -> actions [N, A], what `forward` gives for these rows, at about 70% of its FLOPs.

        The head's first layer is linear in [u; r], so W [u; r] + b = (W_u u + b) + W_r r:
        the user tower and W_u u run once per request (one [1, H] row, the bias of one
        GEMM on the candidates' rest r, read in place as a strided view), instead of N
        times on N copies of the same user block, and no [N, H_user + D - D_USER]
        concatenation is built."""
        assert pair_state.dim() == 2 and pair_state.shape[-1] == self.state_dim
        first = self.head[0]  # nn.Linear
        h_user = first.in_features - (self.state_dim - self.user_dim)
        u = self.user_tower(pair_state[:1, :self.user_dim])  # [1, H_user]
        user_term = torch.addmm(first.bias, u, first.weight[:, :h_user].t())  # [1, H]
        x = torch.addmm(user_term, pair_state[:, self.user_dim:],
                        first.weight[:, h_user:].t())  # [N, H]
        for i, layer in enumerate(self.head):
            if i > 0:
                x = layer(x)
        return x  # [N, A] in [-1, 1]


class FactorizedPairActor(nn.Module):
    """A pair-level actor whose user tower runs once per request (beyond the paper).

    PairActor sends every candidate's copy of the user block through its tower and a wide
    MLP, so a request of N candidates costs N full MLPs. Here the action is

        mu(s_tj) = tanh(W_out relu(W_pair r_tj + g(u_t)) + b_out)

    with u_t the user block (first `user_dim` values, the same for all pairs of a request),
    r_tj the rest of the pair state, and g a user tower (MLP `user_hidden`, then a linear map
    to the pair head's width) that carries the first layer's bias. g(u_t) is computed once
    per request by `forward_request`; each candidate then pays one narrow hidden layer.
    `forward` computes g on every row, so it also takes states of mixed users (training);
    for the rows of one request the two agree. Scriptable; `forward_request` is exported.
    """

    def __init__(self, state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                 user_dim: int = S.D_USER, user_hidden: Sequence[int] = (128, 64),
                 pair_hidden: int = 32):
        super().__init__()
        assert 0 < user_dim < state_dim, (user_dim, state_dim)
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.user_dim = user_dim
        self.user_tower = nn.Sequential(mlp([user_dim, *user_hidden]), nn.ReLU(),
                                        nn.Linear(user_hidden[-1], pair_hidden))
        self.pair_in = nn.Linear(state_dim - user_dim, pair_hidden, bias=False)
        self.pair_out = nn.Linear(pair_hidden, action_dim)

    def _head(self, user_term: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.pair_in(rest) + user_term)  # [M, H_pair]
        return torch.tanh(self.pair_out(h))  # [M, A]

    def forward(self, pair_state: torch.Tensor) -> torch.Tensor:
        """pair_state [..., D] of any users -> actions [..., A] in [-1, 1]."""
        assert pair_state.shape[-1] == self.state_dim
        return self._head(self.user_tower(pair_state[..., :self.user_dim]),
                          pair_state[..., self.user_dim:])

    @torch.jit.export
    def forward_request(self, pair_state: torch.Tensor) -> torch.Tensor:
        """pair_state [N, D], all rows of ONE request (the user block is read from row 0)
        -> actions [N, A] in [-1, 1]; the user tower runs once."""
        assert pair_state.dim() == 2 and pair_state.shape[-1] == self.state_dim
        user_term = self.user_tower(pair_state[:1, :self.user_dim])  # [1, H_pair]
        # the user term is the bias of ONE GEMM over the candidates (read in place, a
        # strided view), ReLU on its output: no [N, H_pair] sum as a separate op (an ONNX
        # Gemm with a broadcast C, which onnxruntime fuses with the Relu)
        h = torch.addmm(user_term, pair_state[:, self.user_dim:],
                        self.pair_in.weight.t()).relu_()  # [N, H_pair]
        # the output layer as [A, H] @ [H, N] (returned transposed, a view): MKL runs
        # the [N, H] @ [H, A] form with its narrow A = 10 output 2-3x slower
        return torch.addmm(self.pair_out.bias[:, None], self.pair_out.weight,
                           h.t()).tanh_().t()  # [N, A]


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


def ensemble_linear_t(x_t: torch.Tensor, weight: torch.Tensor,
                     bias: torch.Tensor | None = None) -> torch.Tensor:
    """E linear layers in the feature-major layout: column k of every [in, M] / [out, M]
    matrix is pair k. weight [E, in, out], bias [E, 1, out] (EnsembleLinear's parameters).

    x_t shared by all members [in, M]: ONE GEMM [E * out, in] @ [in, M] (the input is read
    once, its weight gradient is one GEMM with a long inner dimension M); x_t per member
    [E, in, M]: one (b)addbmm. -> [E, out, M], contiguous.

    Why feature-major: every member's activation [out, M] is then a contiguous block of the
    GEMM's output, so the batched matmuls of the next layers and all their gradients read
    and write plain strided batches, with no transpose copies (the pair-major layout
    [M, E * out] -> [E, M, out] forces a copy in each direction on CPU).
    """
    e, n_in, n_out = weight.shape
    w_t = weight.transpose(1, 2)  # [E, out, in], a view
    b_t = None if bias is None else bias.transpose(1, 2)  # [E, out, 1]
    if x_t.dim() == 2:
        w_flat = w_t.reshape(e * n_out, n_in)  # a small copy of the weight, not of the input
        y = (torch.mm(w_flat, x_t) if b_t is None
             else torch.addmm(b_t.reshape(e * n_out, 1), w_flat, x_t))  # [E*out, M]
        return y.view(e, n_out, x_t.shape[1])
    assert x_t.dim() == 3 and x_t.shape[0] == e, (x_t.shape, weight.shape)
    return torch.bmm(w_t, x_t) if b_t is None else torch.baddbmm(b_t, w_t, x_t)


class EnsembleLinear(nn.Module):
    """E independent linear layers as one batched matmul (CORL's VectorizedLinear).

    weight [E, in, out], bias [E, 1, out]. Input either per member x [E, M, in] (one
    `baddbmm`), or shared by all members x [M, in] (one GEMM, no E-fold copy of the input).
    -> [E, M, out], a transposed view of `forward_t`'s feature-major result (CriticEnsemble
    chains `forward_t` directly).
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
        return self.forward_t(x.transpose(-1, -2)).transpose(-1, -2)

    def forward_t(self, x_t: torch.Tensor) -> torch.Tensor:
        """Feature-major: x_t [in, M] (shared) or [E, in, M] -> [E, out, M]."""
        assert x_t.shape[-2] == self.in_features, (x_t.shape, self.in_features)
        return ensemble_linear_t(x_t, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"ensemble_size={self.ensemble_size}, in_features={self.in_features}, "
                f"out_features={self.out_features}")


CPU_CHUNK_BYTES = 4 * 2**20
"""On CPU the ensemble runs in groups of members whose widest activation [k, H, M] stays
under this size: a GEMM's output is then still in cache when the ReLU and the next GEMM
read it. One 20-member block at the paper size (26 MB per activation) goes through DRAM
between every two ops and measured ~1.2x a loop of 20 separate critics (bench/); groups of
3 measured 0.99-1.04x. GPUs take all members at once."""


class CriticEnsemble(nn.Module):
    """q sets x m critics Q_ij(s, a), one batched MLP (docs/ALGORITHM.md section 3).

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
    def linears(self) -> list[EnsembleLinear]:
        """The layers, typed."""
        return [cast(EnsembleLinear, layer) for layer in self.layers]

    @property
    def ensemble_size(self) -> int:
        return self.num_sets * self.per_set

    def members_per_chunk(self, pairs: int, device: torch.device) -> int:
        """Members computed together (see CPU_CHUNK_BYTES): all of them off the CPU."""
        if device.type != "cpu":
            return self.ensemble_size
        widest = max(layer.out_features for layer in self.linears) * max(pairs, 1) * 4
        return max(1, min(self.ensemble_size, CPU_CHUNK_BYTES // widest))

    def _members(self, lo: int, hi: int, params: list[tuple[torch.Tensor, torch.Tensor]],
                 state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q of members lo..hi-1, feature-major (see ensemble_linear_t), from their layers'
        (weight, bias) chunks `params`. -> [hi - lo, 1, M]"""
        (w1, b1), k, m = params[0], hi - lo, state.shape[-2]
        if state.dim() == 2 and action.dim() == 2:  # shared by all members: one GEMM
            x = torch.cat([state, action], dim=-1).t()  # [D + A, M]
            w = w1.transpose(1, 2).reshape(k * w1.shape[2], -1)  # [k*H, D+A]
            # ReLU in place on the GEMM's own output (an in-place op on a view of it would
            # make autograd copy the whole gradient of the base)
            x = torch.addmm(b1.reshape(-1, 1), w, x).relu_().view(k, w1.shape[2], m)
        else:  # split the first layer's weight instead of expanding the shared input E-fold
            d = self.state_dim
            pick = lambda t: t[lo:hi] if t.dim() == 3 else t  # noqa: E731
            x = (ensemble_linear_t(pick(state).transpose(-1, -2), w1[:, :d])
                 + ensemble_linear_t(pick(action).transpose(-1, -2), w1[:, d:])
                 + b1.transpose(1, 2)).relu_()  # [k, H, M]
        for i, (w, b) in enumerate(params[1:], start=2):
            x = ensemble_linear_t(x, w, b)  # [k, H, M]
            if i < len(params):  # in place: each layer's backward needs only its input
                x = x.relu_()
        return x

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        e = self.ensemble_size
        assert state.shape[-1] == self.state_dim and action.shape[-1] == self.action_dim, (
            state.shape, action.shape)
        assert state.dim() in (2, 3) and action.dim() in (2, 3), (state.shape, action.shape)
        for t in (state, action):
            assert t.dim() == 2 or t.shape[0] == e, (state.shape, action.shape)
        m = state.shape[-2]
        assert action.shape[-2] == m, (state.shape, action.shape)
        step = self.members_per_chunk(m, state.device)
        # split (not slice) the parameters: the backward of a split is one concatenation of
        # the chunks' gradients, slices would each scatter into a zero full-size gradient
        chunks = list(zip(*[zip(layer.weight.split(step), layer.bias.split(step), strict=True)
                            for layer in self.linears], strict=True))
        parts = [self._members(lo, min(lo + step, e), list(params), state, action)
                 for lo, params in zip(range(0, e, step), chunks, strict=True)]
        q = parts[0] if len(parts) == 1 else torch.cat(parts)  # [E, 1, M]
        assert q.shape == (e, 1, m), q.shape
        return q.view(self.num_sets, self.per_set, m)  # [q, m, M]
