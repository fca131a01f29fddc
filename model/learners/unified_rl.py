"""`unified_rl`: UnifiedRL, the user-level predecessor of EnhancedRL (docs/ALGORITHM.md 4-5).

One action per request from the user-level state (schema.USER_STATE_DIM), box exploration
around the serving policy, q x m critic ensemble, box (OOD) penalty in the actor loss and the
target multiplier phi in the critic target:

    y_ij = r^(i)_t + gamma (1 - done) phi(mu'(s_{t+1}); B_{t+1}) Q'_ij(s_{t+1}, mu'(s_{t+1}))
    L_actor = mean_t[ -sum_i w_i Qbar_i(s, mu(s)) + eta d(mu(s); B(s)) + lambda sum_i w_i sigma_i ]

It is EnhancedRL's update itself (`UnifiedRL` subclasses model/enhanced_rl.py's
`EnhancedRL`) on lists of one slot, the request: L = 1 (the list and the pair TD then
coincide, so `td_mode` has no effect), the UserActor and a CriticEnsemble on the user-level
state, and the same EnhancedRLConfig (every [R] switch: ensemble_target own / redq_min,
kappa_d, kappa_phi, eta, lambda, ...).
"""

from __future__ import annotations

import time

import torch

from core import schema as S
from core.policy import CallablePolicy
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.learners.base import FitContext, Fitted, record, torch_policy_fn
from model.learners.data import TrainData, minibatches
from model.networks import CriticEnsemble, UserActor


def check_half_width(cfg_h: float, data: TrainData) -> None:
    """The learner's box must be the one the data were logged with."""
    if len(data) and abs(cfg_h - data.half_width) > 1e-6:
        raise ValueError(f"config half_width {cfg_h} != the logs' box half-width "
                         f"{data.half_width}")


class UnifiedRL(EnhancedRL):
    """EnhancedRL's update with one action per request from the user-level state."""

    state_dim = S.USER_STATE_DIM

    def __init__(self, cfg: EnhancedRLConfig, *args, **kwargs):
        if cfg.actor_objective != "exposed" or cfg.td_next != "logged_list":
            raise ValueError("UnifiedRL acts once per request: it needs actor_objective "
                             "'exposed' and td_next 'logged_list'")
        super().__init__(cfg, *args, **kwargs)

    def _networks(self, cfg: EnhancedRLConfig) -> tuple[torch.nn.Module, CriticEnsemble]:
        actor = UserActor(hidden=cfg.actor_hidden)
        critic = CriticEnsemble(cfg.num_critic_sets, cfg.critics_per_set,
                                state_dim=self.state_dim, hidden=cfg.critic_hidden)
        return actor, critic


def as_list_batch(b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A user-level batch (TrainData.user_batch) as EnhancedRL's batch of one-slot lists."""
    one = torch.ones_like(b["done"]).unsqueeze(-1)  # [B, 1]
    return {
        "pair_state": b["state"].unsqueeze(1), "action": b["action"].unsqueeze(1),
        "box_center": b["center"].unsqueeze(1), "mask": one,
        "reward": b["reward"].unsqueeze(-1), "next_pair_state": b["next_state"].unsqueeze(1),
        "next_box_center": b["next_center"].unsqueeze(1),
        "next_mask": (1.0 - b["done"]).unsqueeze(-1), "done": b["done"]}


class UnifiedRLLearner:
    name = "unified_rl"
    level = "user"

    def __init__(self, cfg: EnhancedRLConfig | None = None):
        self.cfg = cfg or EnhancedRLConfig()
        self.learner = UnifiedRL(self.cfg)

    @property
    def actor(self) -> torch.nn.Module:
        return self.learner.actor

    def update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        """One EnhancedRL update on the user-level batch `b` (see `as_list_batch`)."""
        return self.learner.update(as_list_batch(b), diagnostics=False)

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        check_half_width(self.cfg.half_width, data)
        t0 = time.perf_counter()
        history: dict[str, list[float]] = {}
        for idx in minibatches(len(data), self.cfg.batch_size, self.cfg.steps, self.cfg.seed):
            record(history, self.update(data.user_batch(idx)))
        policy = CallablePolicy(torch_policy_fn(self.actor, "user"), "user",
                                f"{ctx.version}-{self.name}")
        return Fitted(policy, history, {"steps": float(self.cfg.steps),
                                        "seconds": time.perf_counter() - t0})
