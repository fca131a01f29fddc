"""EnhancedRL: offline actor-critic on enhanced pair states with list-level TD.

ALGORITHM.md sections 3-6. One `update(batch)`:

1. critic step (every call). With the TARGET actor mu' and TARGET critics Q' on the next
   request's exposed pairs:
       Y_ij(t) = sum_k r^(i)_tk + gamma (1 - done_t) sum_{k in t+1} phi(mu'(s); B) Q'_ij(s, mu'(s))
   and L_critic = sum_ij mean_t (sum_{k in t} Q_ij(s_tk, a_tk) - Y_ij(t))^2.
   Each critic bootstraps from its own target (the paper: no min over the ensemble);
   `ensemble_target = 'redq_min'` uses the min over a random subset of the set instead.
2. actor step (every `actor_delay` calls), on the batch's present pairs with the CURRENT
   critics: mean[-sum_i w_i Qbar_i + eta d(mu(s); B(s)) + lambda sum_i w_i sigma_i].
3. Polyak update of both target networks with tau, every call.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from model.config import EnhancedRLConfig
from model.losses import (
    actor_loss,
    box_penalty,
    critic_loss,
    list_td_target,
    pair_td_target,
    target_multiplier,
)
from model.networks import CriticEnsemble, PairActor
from mtf import schema as S


def soft_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    with torch.no_grad():
        for tp, p in zip(target.parameters(), source.parameters()):
            tp.mul_(1.0 - tau).add_(p, alpha=tau)


class EnhancedRL:
    """The learner: networks, targets, optimizers and the update step."""

    def __init__(self, cfg: EnhancedRLConfig, device: str = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        torch.manual_seed(cfg.seed)  # network init is seeded
        self.generator = torch.Generator().manual_seed(cfg.seed)  # REDQ subsets
        self.actor = PairActor(user_tower_hidden=cfg.user_tower_hidden,
                               hidden=cfg.actor_hidden).to(self.device)
        self.critic = CriticEnsemble(cfg.num_critic_sets, cfg.critics_per_set,
                                     hidden=cfg.critic_hidden).to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.set_weights = torch.tensor(cfg.set_weights, dtype=torch.float32,
                                        device=self.device)
        self.step = 0

    # --- pieces ---------------------------------------------------------------------
    def _next_values(self, ns: torch.Tensor, nbox: torch.Tensor, b: int, l: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """Target critics at (s_{t+1,k}, mu'(s_{t+1,k})) -> ([S, m, B, L], phi [B, L])."""
        cfg = self.cfg
        na = self.actor_target(ns)  # [B*L, A]
        phi = target_multiplier(na, nbox, cfg.half_width, cfg.kappa_phi).view(b, l)
        nq = self.critic_target(ns, na).view(cfg.num_critic_sets, cfg.critics_per_set, b, l)
        if cfg.ensemble_target == "redq_min":
            idx = torch.stack([torch.randperm(cfg.critics_per_set, generator=self.generator)
                               [:cfg.redq_subset] for _ in range(cfg.num_critic_sets)])
            sub = torch.stack([nq[i, idx[i]] for i in range(cfg.num_critic_sets)])
            nq = sub.min(1, keepdim=True).values.expand_as(nq)  # [S, m, B, L]
        return nq, phi

    def _critic_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        b, l, d = batch["pair_state"].shape
        a_dim = batch["action"].shape[-1]
        with torch.no_grad():
            nq, nphi = self._next_values(batch["next_pair_state"].reshape(b * l, d),
                                         batch["next_box_center"].reshape(b * l, a_dim), b, l)
            if cfg.td_mode == "list":
                target = list_td_target(batch["reward"], batch["mask"], nq, nphi,
                                        batch["next_mask"], batch["done"], cfg.gamma)
            else:
                target = pair_td_target(batch["reward"], nq, nphi, batch["next_mask"],
                                        batch["done"], cfg.gamma)
        q = self.critic(batch["pair_state"].reshape(b * l, d),
                        batch["action"].reshape(b * l, a_dim)
                        ).view(cfg.num_critic_sets, cfg.critics_per_set, b, l)
        loss = critic_loss(q, batch["mask"], target)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
        self.critic_opt.step()
        present = batch["mask"].reshape(-1) > 0
        qp = q.detach().reshape(cfg.num_critic_sets, cfg.critics_per_set, -1)[..., present]
        return {"losses/critic": float(loss.detach()), "q/mean": float(qp.mean()),
                "q/std": float(qp.std(1, unbiased=False).mean()),
                "q/target_mean": float(target.mean()), "charts/phi_mean": float(nphi.mean())}

    def _actor_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        d, a_dim = batch["pair_state"].shape[-1], batch["action"].shape[-1]
        present = batch["mask"].reshape(-1) > 0
        s = batch["pair_state"].reshape(-1, d)[present]  # [M, D] exposed pairs
        center = batch["box_center"].reshape(-1, a_dim)[present]  # [M, A]
        pi = self.actor(s)
        q_pi = self.critic(s, pi)  # [S, m, M]
        pen = box_penalty(pi, center, cfg.half_width, cfg.kappa_d)  # [M]
        parts = actor_loss(q_pi, pen, self.set_weights, cfg.eta, cfg.lam)
        self.actor_opt.zero_grad(set_to_none=True)
        parts.total.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.grad_clip)
        self.actor_opt.step()
        return {"losses/actor": float(parts.total.detach()), "losses/actor_q": float(parts.q_term.detach()),
                "losses/box_penalty": float(parts.box_term.detach()),
                "losses/ensemble_std": float(parts.std_term.detach()),
                "charts/in_box_frac": float((pen == 0).float().mean())}

    # --- public -------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        batch = {k: v.to(self.device) for k, v in batch.items()}
        assert batch["pair_state"].dim() == 3 and batch["reward"].shape[1] == \
            self.cfg.num_critic_sets, {k: tuple(v.shape) for k, v in batch.items()}
        metrics = self._critic_step(batch)
        if (self.step + 1) % self.cfg.actor_delay == 0:
            metrics.update(self._actor_step(batch))
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        soft_update(self.actor_target, self.actor, self.cfg.tau)
        self.step += 1
        return metrics

    @torch.no_grad()
    def act(self, pair_state: np.ndarray | torch.Tensor) -> np.ndarray:
        x = torch.as_tensor(np.asarray(pair_state, dtype=np.float32)).reshape(
            -1, S.PAIR_STATE_DIM)
        self.actor.eval()
        out = self.actor(x.to(self.device)).cpu().numpy()
        self.actor.train()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "actor_target": self.actor_target.state_dict(),
                "critic_target": self.critic_target.state_dict(),
                "actor_opt": self.actor_opt.state_dict(),
                "critic_opt": self.critic_opt.state_dict(), "step": self.step,
                "generator": self.generator.get_state(), "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in ("actor", "critic", "actor_target", "critic_target", "actor_opt",
                     "critic_opt"):
            getattr(self, name).load_state_dict(state[name])
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
