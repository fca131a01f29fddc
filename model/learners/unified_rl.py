"""`unified_rl`: UnifiedRL, the user-level predecessor of EnhancedRL (ALGORITHM.md 4-5).

One action per request from the user-level state (schema.USER_STATE_DIM), box exploration
around the serving policy, q x m critic ensemble, box (OOD) penalty in the actor loss and the
target multiplier phi in the critic target:

    y_ij = r^(i)_t + gamma (1 - done) phi(mu'(s_{t+1}); B_{t+1}) Q'_ij(s_{t+1}, mu'(s_{t+1}))
    L_actor = mean_t[ -sum_i w_i Qbar_i(s, mu(s)) + eta d(mu(s); B(s)) + lambda sum_i w_i sigma_i ]

It is EnhancedRL's maths on a list of one "pair" (the request): the same functions of
model/losses.py with L = 1 (the list and the pair TD then coincide, so `td_mode` has no
effect), the same CriticEnsemble and the UserActor, and the same EnhancedRLConfig (every [R]
switch: ensemble_target own / redq_min, kappa_d, kappa_phi, eta, lambda, ...).
"""

from __future__ import annotations

import copy
import time

import torch

from core import schema as S
from core.policy import CallablePolicy
from model.config import EnhancedRLConfig
from model.enhanced_rl import frozen, redq_subsets, soft_update
from model.learners.base import FitContext, Fitted, record, torch_policy_fn
from model.learners.data import TrainData, minibatches
from model.losses import actor_loss, box_penalty, critic_loss, list_td_target, target_multiplier
from model.networks import CriticEnsemble, UserActor


def check_half_width(cfg_h: float, data: TrainData) -> None:
    """The learner's box must be the one the data were logged with."""
    if len(data) and abs(cfg_h - data.half_width) > 1e-6:
        raise ValueError(f"config half_width {cfg_h} != the logs' box half-width "
                         f"{data.half_width}")


class UnifiedRLLearner:
    name = "unified_rl"
    level = "user"

    def __init__(self, cfg: EnhancedRLConfig | None = None):
        self.cfg = cfg or EnhancedRLConfig()
        cfg = self.cfg
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.actor = UserActor(hidden=cfg.actor_hidden)
            self.critic = CriticEnsemble(cfg.num_critic_sets, cfg.critics_per_set,
                                         state_dim=S.USER_STATE_DIM, hidden=cfg.critic_hidden)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.set_weights = torch.tensor(cfg.set_weights, dtype=torch.float32)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step = 0

    def update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        """One critic step, an actor step every `actor_delay` calls, soft target updates."""
        cfg = self.cfg
        n = b["state"].shape[0]
        one = torch.ones(n, 1)
        with torch.no_grad():
            na = self.actor_target(b["next_state"])
            phi = target_multiplier(na, b["next_center"], cfg.half_width, cfg.kappa_phi)
            nq = self.critic_target(b["next_state"], na).unsqueeze(-1)  # [S, m, B, 1]
            y = list_td_target(b["reward"].unsqueeze(-1), one, nq, phi.unsqueeze(-1),
                               (1.0 - b["done"]).unsqueeze(-1), b["done"], cfg.gamma,
                               redq_subsets=redq_subsets(cfg, self.generator))  # [S, m, B]
        q = self.critic(b["state"], b["action"]).unsqueeze(-1)  # [S, m, B, 1]
        loss = critic_loss(q, one, y)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        metrics = {"losses/critic": float(loss.detach()), "q/mean": float(q.detach().mean())}
        if (self.step + 1) % cfg.actor_delay == 0:
            pi = self.actor(b["state"])
            with frozen(self.critic):
                q_pi = self.critic(b["state"], pi)  # [S, m, B]
            pen = box_penalty(pi, b["center"], cfg.half_width, cfg.kappa_d)
            parts = actor_loss(q_pi, pen, self.set_weights, cfg.eta, cfg.lam)
            self.actor_opt.zero_grad(set_to_none=True)
            parts.total.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_clip)
            self.actor_opt.step()
            metrics.update({"losses/actor": float(parts.total.detach()),
                            "losses/box_penalty": float(parts.box_term.detach())})
        soft_update(self.critic_target, self.critic, cfg.tau)
        soft_update(self.actor_target, self.actor, cfg.tau)
        self.step += 1
        return metrics

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        check_half_width(self.cfg.half_width, data)
        t0, history = time.perf_counter(), {}
        self.actor.train()
        for idx in minibatches(len(data), self.cfg.batch_size, self.cfg.steps, self.cfg.seed):
            record(history, self.update(data.user_batch(idx)))
        policy = CallablePolicy(torch_policy_fn(self.actor, "user"), "user",
                                f"{ctx.version}-{self.name}")
        return Fitted(policy, history, {"steps": float(self.cfg.steps),
                                        "seconds": time.perf_counter() - t0})
