"""`batchrl_mtf`: BatchRL-MTF (KDD 2022), batch-constrained Q-learning (BCQ) at user level.

On the user-level state (schema.USER_STATE_DIM), one action per request, as in BCQ:

- a conditional VAE G(s) models the logged actions (reconstruction + KL loss);
- a perturbation net xi(s, a) in [-max_perturb, max_perturb]^10 nudges generated actions;
- twin critics Q_1, Q_2 (a CriticEnsemble of one set of 2), trained on the clipped double Q
  target over n actions generated at s' and perturbed by the target perturbation net:

      y = r + gamma (1 - done) max_{k<n} [ lam min_j Q'_j(s', a_k) + (1 - lam) max_j Q'_j(s', a_k) ]

- xi maximises Q_1(s, G(s) + xi); targets move by `tau` every `target_every` steps.

Serving: n candidate actions from the decoder at n FIXED latent vectors (drawn once, clipped
to [-0.5, 0.5] as in BCQ), perturbed, the one with the highest Q_1 served; fixing the latents
keeps the policy deterministic (the simulator's runs and the NCIS scoring agree). Reward = the
request's list reward summed over both critic sets (BatchRL-MTF has one critic per reward).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core import schema as S
from core.policy import CallablePolicy
from model.enhanced_rl import frozen, soft_update
from model.learners.base import FitContext, Fitted, record
from model.learners.data import TrainData, minibatches
from model.networks import CriticEnsemble, mlp

DU, A = S.USER_STATE_DIM, S.ACTION_DIM


@dataclass
class BatchRLMTFConfig:
    gamma: float = 0.95
    """Discount between consecutive requests (BatchRL-MTF's value)."""
    vae_lr: float = 1e-3
    """Adam learning rate of the VAE generator."""
    actor_lr: float = 1e-4
    """Adam learning rate of the perturbation net."""
    critic_lr: float = 2e-4
    """Adam learning rate of the twin critics."""
    tau: float = 0.05
    """Polyak factor of the target updates."""
    target_every: int = 10
    """Update the targets every this many steps."""
    max_perturb: float = 0.15
    """Phi: bound of the perturbation, normalised action units."""
    clip_lambda: float = 0.75
    """lam of the clipped double Q target (weight of the min of the twins)."""
    n_samples: int = 10
    """Actions generated per state for the target and for serving."""
    latent_dim: int = 20
    """VAE latent size (BCQ: twice the action dim)."""
    kl_weight: float = 0.5
    """Weight of the KL term in the VAE loss."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of the VAE encoder / decoder, perturbation net and critics."""
    batch_size: int = 256
    """Requests per batch."""
    steps: int = 2000
    """Gradient steps."""
    seed: int = 0
    """Seed of init, sampling and the serving latents."""

    def __post_init__(self) -> None:
        self.hidden = tuple(int(x) for x in self.hidden)
        if not 0.0 <= self.clip_lambda <= 1.0:
            raise ValueError(f"clip_lambda must be in [0, 1], got {self.clip_lambda}")
        if self.n_samples < 1 or self.target_every < 1:
            raise ValueError("n_samples and target_every must be >= 1")


class VAE(nn.Module):
    """Conditional VAE of the logged action given the state (BCQ's generator)."""

    def __init__(self, latent_dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.latent_dim = latent_dim
        self.enc = mlp([DU + A, *hidden, 2 * latent_dim])
        self.dec = mlp([DU + latent_dim, *hidden, A], nn.Tanh())

    def decode(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.cat([s, z], -1))

    def forward(self, s: torch.Tensor, a: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mean, log_std = self.enc(torch.cat([s, a], -1)).chunk(2, -1)
        std = log_std.clamp(-4.0, 15.0).exp()
        z = mean + std * torch.randn_like(std)
        return self.decode(s, z), mean, std


class Perturbation(nn.Module):
    """a -> clip(a + max_perturb * tanh(net(s, a)), -1, 1)."""

    def __init__(self, max_perturb: float, hidden: tuple[int, ...]):
        super().__init__()
        self.max_perturb = max_perturb
        self.net = mlp([DU + A, *hidden, A], nn.Tanh())

    def forward(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return (a + self.max_perturb * self.net(torch.cat([s, a], -1))).clamp(-1.0, 1.0)


class BatchRLMTFLearner:
    name = "batchrl_mtf"
    level = "user"

    def __init__(self, cfg: BatchRLMTFConfig | None = None):
        self.cfg = cfg = cfg or BatchRLMTFConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.vae = VAE(cfg.latent_dim, cfg.hidden)
            self.actor = Perturbation(cfg.max_perturb, cfg.hidden)
            self.critic = CriticEnsemble(1, 2, state_dim=DU, hidden=cfg.hidden)
            self.latents = torch.randn(cfg.n_samples, cfg.latent_dim).clamp(-0.5, 0.5)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.vae_opt = torch.optim.Adam(self.vae.parameters(), lr=cfg.vae_lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.step = 0

    def _candidates(self, s: torch.Tensor, perturb: Perturbation, z: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """n generated + perturbed actions per state. s [B, DU], z [B * n, latent] ->
        (states repeated [B * n, DU], actions [B * n, A]), state-major."""
        rep = s.repeat_interleave(self.cfg.n_samples, 0)
        return rep, perturb(rep, self.vae.decode(rep, z))

    def update(self, b: dict[str, torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        s, a = b["state"], b["action"]
        n, k = s.shape[0], cfg.n_samples
        recon, mean, std = self.vae(s, a)
        kl = -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean()
        vae_loss = nn.functional.mse_loss(recon, a) + cfg.kl_weight * kl
        self.vae_opt.zero_grad(set_to_none=True)
        vae_loss.backward()
        self.vae_opt.step()
        with torch.no_grad():
            z = torch.randn(n * k, cfg.latent_dim).clamp(-0.5, 0.5)
            rep, na = self._candidates(b["next_state"], self.actor_target, z)
            tq = self.critic_target(rep, na)[0]  # [2, B * k]
            tq = cfg.clip_lambda * tq.min(0).values + (1 - cfg.clip_lambda) * tq.max(0).values
            tq = tq.view(n, k).max(1).values  # [B]
            y = b["reward"].sum(-1) + cfg.gamma * (1.0 - b["done"]) * tq
        q = self.critic(s, a)[0]  # [2, B]
        critic_loss = ((q - y) ** 2).mean(1).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_opt.step()
        with torch.no_grad():
            gen = self.vae.decode(s, torch.randn(n, cfg.latent_dim).clamp(-0.5, 0.5))
        with frozen(self.critic):
            actor_loss = -self.critic(s, self.actor(s, gen))[0, 0].mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        self.actor_opt.step()
        self.step += 1
        if self.step % cfg.target_every == 0:
            soft_update(self.critic_target, self.critic, cfg.tau)
            soft_update(self.actor_target, self.actor, cfg.tau)
        return {"losses/vae": float(vae_loss.detach()),
                "losses/critic": float(critic_loss.detach()),
                "losses/actor": float(actor_loss.detach()), "q/mean": float(q.detach().mean())}

    @torch.no_grad()
    def act(self, user_state: np.ndarray) -> np.ndarray:
        """Deterministic BCQ action: best of n perturbed generations. [B, DU] -> [B, A]"""
        s = torch.as_tensor(np.asarray(user_state), dtype=torch.float32)
        b = s.shape[0]
        rep, cand = self._candidates(s, self.actor, self.latents.repeat(b, 1))
        q1 = self.critic(rep, cand)[0, 0].view(b, self.cfg.n_samples)
        best = q1.argmax(1)
        return cand.view(b, self.cfg.n_samples, A)[torch.arange(b), best].numpy()

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        t0 = time.perf_counter()
        history: dict[str, list[float]] = {}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            for idx in minibatches(len(data), self.cfg.batch_size, self.cfg.steps,
                                   self.cfg.seed):
                record(history, self.update(data.user_batch(idx)))
        for m in (self.vae, self.actor, self.critic):
            m.eval()
        policy = CallablePolicy(lambda u, p: self.act(u), "user", f"{ctx.version}-{self.name}")
        return Fitted(policy, history, {"steps": float(self.cfg.steps),
                                        "seconds": time.perf_counter() - t0})
