"""EnhancedRL: offline actor-critic on enhanced pair states with a list-level TD error.

docs/ALGORITHM.md sections 3-6. One `update(batch)`:

1. Critic step (every call). With the TARGET actor mu' and the TARGET critics Q' on the
   pairs exposed at the next request, phi from the next pairs' logged boxes:

       Y_ij(t)  = sum_{k in t} r^(i)_tk
                  + gamma (1 - done_t) sum_{k in t+1} phi(mu'(s'_k); B'_k) Q'_ij(s'_k, mu'(s'_k))
       L_critic = sum_ij mean_t (sum_{k in t} Q_ij(s_tk, a_tk) - Y_ij(t))^2

   Each critic bootstraps from its own target (paper: no min over the ensemble);
   `ensemble_target = 'redq_min'` [R] uses the min over a random subset of the set's targets,
   `td_mode = 'pair'` [R] the per-pair ablation (model/losses.py).
2. Actor step (every `actor_delay`-th call: the 2nd, 4th, ... with the default 2), on the
   batch's exposed pairs with the CURRENT (just updated) critics, whose weights are frozen
   for this step so that only the actor gets gradients:

       L_actor = mean_pairs[ -sum_i w_i Qbar_i(s, mu(s)) + eta d(mu(s); B(s))
                             + lambda sum_i w_i sigma_i(s, mu(s)) ]

3. Polyak update of BOTH target networks with tau after EVERY call (docs/ALGORITHM.md section 6,
   "tau 0.005 every step" [R]); unlike TD3, the target actor also moves on critic-only calls
   (it then tracks an actor that did not change, which only shortens its lag).

Ensemble diagnostics (`diagnostics=True`, the default): per critic set i, the mean and the
spread (std over the set's m critics, averaged over pairs) of Q on the logged actions and on
the policy's actions, after the update: `q/set{i}_logged_mean`, `q/set{i}_logged_std`,
`q/set{i}_pi_mean`, `q/set{i}_pi_std`. A growing pi-vs-logged gap or pi spread is the
out-of-distribution over-estimation the box and std penalties are there to hold down.

Data-parallel training (jobs/train.py under torchrun): `grad_sync` averages each network's
gradients over the ranks between backward and the optimizer step, so identical replicas
stay identical. Every rank then takes every step, even one whose batch has no exposed pair
(its gradient counts as zero), or the collective calls would not match up.

Only present pairs (mask / next_mask) go through the networks; absent slots are zeros in
the [S, m, B, L] tensors, so short lists and ended sessions cost nothing.

Batch contract (what the loader yields; float32; B lists, L = schema.LIST_LEN slots,
D = schema.PAIR_STATE_DIM, A = schema.ACTION_DIM, S = num_critic_sets): see `BATCH_SHAPES`.
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from core import schema as S
from model.config import EnhancedRLConfig
from model.losses import (
    actor_loss,
    box_penalty,
    critic_loss,
    fused_log_score,
    list_td_target,
    pair_td_target,
    selection_actor_loss,
    soft_top_l,
    target_multiplier,
)
from model.networks import CriticEnsemble, PairActor

# name -> shape with symbolic dims (B lists, L slots, D state, A action, S critic sets)
BATCH_SHAPES: dict[str, tuple[str, ...]] = {
    "pair_state": ("B", "L", "D"),  # enhanced states of the exposed pairs of request t
    "action": ("B", "L", "A"),  # logged normalised actions in [-1, 1]
    "box_center": ("B", "L", "A"),  # mu_bp(s): box = [center - h, center + h]
    "mask": ("B", "L"),  # 1 for a present item (lists can be shorter than L)
    "reward": ("B", "S", "L"),  # per critic set, per pair
    "next_pair_state": ("B", "L", "D"),  # pairs exposed at request t+1 of the same session
    "next_box_center": ("B", "L", "A"),
    "next_mask": ("B", "L"),  # all zeros when done
    "done": ("B",),  # 1 if the session ended after request t
}

# The request's logged candidates (K slots in logged-score order, the exposed l first), read
# by actor_objective = 'selection'; and the next request's, read by td_next = 'selected_list'.
CAND_SHAPES: dict[str, tuple[str, ...]] = {
    "cand_state": ("B", "K", "D"),
    "cand_center": ("B", "K", "A"),
    "cand_mask": ("B", "K"),  # 1 for a present candidate
}
NEXT_CAND_SHAPES: dict[str, tuple[str, ...]] = {
    "next_cand_state": ("B", "K", "D"),
    "next_cand_center": ("B", "K", "A"),
    "next_cand_mask": ("B", "K"),  # all zeros when done
}


def check_batch(batch: dict[str, torch.Tensor], num_sets: int,
                state_dim: int = S.PAIR_STATE_DIM, action_dim: int = S.ACTION_DIM,
                candidates: bool = False, next_candidates: bool = False) -> tuple[int, int]:
    """Assert the batch contract (`BATCH_SHAPES`, and `CAND_SHAPES` / `NEXT_CAND_SHAPES`
    when asked for); return (B, L)."""
    shapes = dict(BATCH_SHAPES)
    if candidates:
        shapes.update(CAND_SHAPES)
    if next_candidates:
        shapes.update(NEXT_CAND_SHAPES)
    missing = set(shapes) - set(batch)
    assert not missing, f"batch misses {sorted(missing)}"
    b, slots = batch["mask"].shape
    k = batch["cand_mask"].shape[1] if candidates else (
        batch["next_cand_mask"].shape[1] if next_candidates else 0)
    dims = {"B": b, "L": slots, "K": k, "D": state_dim, "A": action_dim, "S": num_sets}
    for name, sym in shapes.items():
        want = tuple(dims[x] for x in sym)
        assert tuple(batch[name].shape) == want, f"{name}: {tuple(batch[name].shape)} != {want}"
    return b, slots


def redq_subsets(cfg: EnhancedRLConfig, generator: torch.Generator) -> torch.Tensor | None:
    """[S, k] random critic indices per set for ensemble_target = 'redq_min', else None
    (drawn from the learner's own generator, so a resumed run draws the same subsets)."""
    if cfg.ensemble_target != "redq_min":
        return None
    keys = torch.rand(cfg.num_critic_sets, cfg.critics_per_set, generator=generator)
    return keys.argsort(dim=1)[:, :cfg.redq_subset]


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source, parameter by parameter (no buffers here)."""
    with torch.no_grad():
        for tp, p in zip(target.parameters(), source.parameters(), strict=True):
            tp.lerp_(p, tau)


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No parameter gradients for `module` inside the block (gradients still flow through
    it to its inputs): the actor step does not pay for critic weight gradients."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, f in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(f)


GradSync = Callable[[Sequence[nn.Parameter]], None]


class NonFiniteError(FloatingPointError):
    """A NaN or an infinity in a training batch or a loss: the update refuses to go on (a
    model trained through it must never be exported, let alone published)."""


_SLOTS_OF = {"pair_state": "mask", "action": "mask", "box_center": "mask",
             "next_pair_state": "next_mask", "next_box_center": "next_mask",
             "cand_state": "cand_mask", "cand_center": "cand_mask",
             "next_cand_state": "next_cand_mask", "next_cand_center": "next_cand_mask"}


def check_finite(batch: dict[str, torch.Tensor], step: int) -> None:
    """Raise NonFiniteError naming the batch entries that hold a NaN or an infinity in a
    present slot (absent slots are never read: whatever they hold is ignored)."""

    def present(name: str, v: torch.Tensor) -> torch.Tensor:
        if name in _SLOTS_OF:
            return v[batch[_SLOTS_OF[name]] > 0]
        if name == "reward":  # [B, S, L] -> the present pairs' rewards
            return v.transpose(1, 2)[batch["mask"] > 0]
        return v

    # the whole tensor first (one pass, no copy); the present slots only when that fails
    bad = sorted(k for k, v in batch.items() if not bool(torch.isfinite(v).all())
                 and not bool(torch.isfinite(present(k, v)).all()))
    if bad:
        raise NonFiniteError(f"non-finite values in the training batch at step {step}: "
                             f"{', '.join(bad)} (the input rows hold NaN or inf)")
"""Averages the gradients of these parameters over the data-parallel ranks, in place."""


def _present_index(mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of the present slots of a [B, L] mask. -> [M] long"""
    return torch.nonzero(mask.reshape(-1) > 0).squeeze(-1)


class EnhancedRL:
    """The learner: actor, critic ensemble, their targets, optimizers and the update step.

    Subclasses change the networks (`state_dim`, `_networks`), never the update:
    UnifiedRL (model/learners/unified_rl.py) is this update on lists of one slot."""

    state_dim: int = S.PAIR_STATE_DIM
    """Width of the state the actor and the critics read."""

    def __init__(self, cfg: EnhancedRLConfig, device: str | torch.device = "cpu",
                 grad_sync: GradSync | None = None):
        self.cfg = cfg
        self.device = torch.device(device)
        self.grad_sync = grad_sync
        """None for one process; under torchrun, the all-reduce of model/distributed.py."""
        # Seeded init that leaves the caller's global torch RNG untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.actor, self.critic = self._networks(cfg)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr)
        self.set_weights = torch.tensor(cfg.set_weights, dtype=torch.float32,
                                        device=self.device)  # [S]
        # the learner's own sampling (REDQ subsets): a local generator, saved in state_dict
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        """Number of completed `update` calls."""

    def _networks(self, cfg: EnhancedRLConfig) -> tuple[nn.Module, CriticEnsemble]:
        """(actor, critic ensemble), built in this order from the seeded RNG."""
        actor = PairActor(user_tower_hidden=cfg.user_tower_hidden, hidden=cfg.actor_hidden)
        critic = CriticEnsemble(cfg.num_critic_sets, cfg.critics_per_set,
                                state_dim=self.state_dim, hidden=cfg.critic_hidden)
        return actor, critic

    # --- critic ---------------------------------------------------------------------------
    def _redq_subsets(self) -> torch.Tensor | None:
        subsets = redq_subsets(self.cfg, self.generator)
        return None if subsets is None else subsets.to(self.device)  # [S, k]

    @torch.no_grad()
    def _critic_target(self, batch: dict[str, torch.Tensor], b: int, slots: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """TD targets with the TARGET actor and critics on the next request's exposed pairs.

        -> (target [S, m, B] (list) or [S, m, B, L] (pair), phi of the present next pairs [M'])
        """
        cfg = self.cfg
        n_sets, per_set = cfg.num_critic_sets, cfg.critics_per_set
        if cfg.td_next == "selected_list":
            return self._selected_list_target(batch, b)
        n = b * slots
        idx = _present_index(batch["next_mask"])  # [M']
        ns = batch["next_pair_state"].reshape(n, -1)[idx]  # [M', D]
        na = self.actor_target(ns)  # [M', A]
        phi = target_multiplier(na, batch["next_box_center"].reshape(n, -1)[idx],
                                cfg.half_width, cfg.kappa_phi)  # [M']
        nq_present = self.critic_target(ns, na)  # [S, m, M']
        nq = nq_present.new_zeros(n_sets, per_set, n).index_copy(-1, idx, nq_present)
        nq = nq.view(n_sets, per_set, b, slots)  # [S, m, B, L], absent slots 0
        nphi = phi.new_zeros(n).index_copy(0, idx, phi).view(b, slots)  # [B, L]
        if cfg.td_mode == "list":
            y = list_td_target(batch["reward"], batch["mask"], nq, nphi, batch["next_mask"],
                               batch["done"], cfg.gamma, redq_subsets=self._redq_subsets())
        else:
            y = pair_td_target(batch["reward"], nq, nphi, batch["next_mask"], batch["done"],
                               cfg.gamma, redq_subsets=self._redq_subsets())
        return y, phi

    def _candidates(self, batch: dict[str, torch.Tensor], prefix: str, actor: nn.Module,
                    critic: nn.Module) -> dict[str, torch.Tensor]:
        """The first `selection_candidates` slots of the batch's `{prefix}cand_*` through
        `actor` and `critic`, scattered back to dense [.., B, K] tensors (absent slots 0):
        state [B, K, D], mask [B, K], pi [B, K, A] (dense), q [S, m, B, K], score [B, K]
        (fused log score of pi), penalty [B, K] (box penalty), phi [B, K]."""
        cfg = self.cfg
        k = min(cfg.selection_candidates, batch[f"{prefix}cand_mask"].shape[1])
        state = batch[f"{prefix}cand_state"][:, :k]
        center = batch[f"{prefix}cand_center"][:, :k]
        mask = batch[f"{prefix}cand_mask"][:, :k]
        b = mask.shape[0]
        n = b * k
        idx = _present_index(mask)
        s = state.reshape(n, -1)[idx]  # [M, D]
        c = center.reshape(n, -1)[idx]
        pi = actor(s)  # [M, A]
        q = critic(s, pi)  # [S, m, M]

        def dense(x: torch.Tensor) -> torch.Tensor:  # [..., M] -> [..., B, K]
            out = x.new_zeros(*x.shape[:-1], n).index_copy(-1, idx, x)
            return out.view(*x.shape[:-1], b, k)

        return {"mask": mask, "q": dense(q),
                "score": dense(fused_log_score(s[:, S.PAIR_PRED], pi)),
                "penalty": dense(box_penalty(pi, c, cfg.half_width, cfg.kappa_d)),
                "phi": dense(target_multiplier(pi, c, cfg.half_width, cfg.kappa_phi))}

    @torch.no_grad()
    def _selected_list_target(self, batch: dict[str, torch.Tensor], b: int
                              ) -> tuple[torch.Tensor, torch.Tensor]:
        """td_next = 'selected_list': bootstrap from the next request's candidates, each
        weighted by its soft top-l membership under the TARGET actor's fused scores (l =
        the next list's length), instead of from the pairs the behaviour policy exposed:

            Y_ij(t) = sum_{k in t} r^(i)_tk
                      + gamma (1 - done_t) sum_{j in cand(t+1)} p'_j phi_j Q'_ij(s_j, mu'(s_j))
        -> (target [S, m, B], phi of the present next candidates)"""
        cfg = self.cfg
        nxt = self._candidates(batch, "next_", self.actor_target, self.critic_target)
        n_list = batch["next_mask"].sum(-1)  # [B]
        p = soft_top_l(nxt["score"], nxt["mask"], n_list, cfg.selection_temperature)
        y = list_td_target(batch["reward"], batch["mask"], nxt["q"], p * nxt["phi"],
                           nxt["mask"], batch["done"], cfg.gamma,
                           redq_subsets=self._redq_subsets())
        return y, nxt["phi"][nxt["mask"] > 0]

    def _critic_q(self, batch: dict[str, torch.Tensor], b: int, slots: int) -> torch.Tensor:
        """Current critics at the logged (s_tk, a_tk), absent slots 0. -> [S, m, B, L]"""
        n_sets, per_set, n = self.cfg.num_critic_sets, self.cfg.critics_per_set, b * slots
        idx = _present_index(batch["mask"])  # [M]
        q_present = self.critic(batch["pair_state"].reshape(n, -1)[idx],
                                batch["action"].reshape(n, -1)[idx])  # [S, m, M]
        q = q_present.new_zeros(n_sets, per_set, n).index_copy(-1, idx, q_present)
        return q.view(n_sets, per_set, b, slots)

    def _critic_step(self, batch: dict[str, torch.Tensor], b: int, slots: int
                     ) -> dict[str, float]:
        cfg = self.cfg
        target, next_phi = self._critic_target(batch, b, slots)
        q = self._critic_q(batch, b, slots)  # [S, m, B, L]
        loss = critic_loss(q, batch["mask"], target)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            self.grad_sync(list(self.critic.parameters()))
        metrics: dict[str, float] = {}
        if cfg.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)
            metrics["charts/critic_grad_norm"] = float(norm)
        self.critic_opt.step()
        with torch.no_grad():
            present = batch["mask"].reshape(-1) > 0
            q_p = q.detach().flatten(2)[..., present]  # [S, m, M]
            metrics.update({
                "losses/critic": float(loss.detach()),
                "q/mean": float(q_p.mean()) if q_p.numel() else 0.0,
                # spread of the m critics of a set, averaged over sets and pairs
                "q/std": float(q_p.std(1, unbiased=False).mean()) if q_p.numel() else 0.0,
                "q/target_mean": float(target.mean()),
                "charts/phi_mean": float(next_phi.mean()) if next_phi.numel() else 1.0,
            })
        return metrics

    # --- actor ----------------------------------------------------------------------------
    def _actor_step(self, batch: dict[str, torch.Tensor], b: int, slots: int
                    ) -> dict[str, float]:
        cfg = self.cfg
        if cfg.actor_objective == "selection":
            return self._selection_actor_step(batch)
        idx = _present_index(batch["mask"])
        if idx.numel() == 0:  # no exposed pair: a mean over nothing would be NaN
            return self._idle_actor_step()
        s = batch["pair_state"].reshape(b * slots, -1)[idx]  # [M, D] exposed pairs
        center = batch["box_center"].reshape(b * slots, -1)[idx]  # [M, A]
        pi = self.actor(s)  # [M, A]
        with frozen(self.critic):
            q_pi = self.critic(s, pi)  # [S, m, M]
        penalty = box_penalty(pi, center, cfg.half_width, cfg.kappa_d)  # [M]
        parts = actor_loss(q_pi, penalty, self.set_weights, cfg.eta, cfg.lam)
        self.actor_opt.zero_grad(set_to_none=True)
        parts.total.backward()
        metrics = self._step_actor()
        metrics.update({
            "losses/actor": float(parts.total.detach()),
            "losses/actor_q": float(parts.q_term.detach()),
            "losses/box_penalty": float(parts.box_term.detach()),
            "losses/ensemble_std": float(parts.std_term.detach()),
            "q/pi_mean": float(q_pi.detach().mean()),
            "charts/in_box_frac": float((penalty.detach() == 0).float().mean()),
        })
        return metrics

    def _selection_actor_step(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """actor_objective = 'selection' (docs/ALGORITHM.md section 9): the actor acts on
        the request's logged candidates; each candidate's Q and ensemble std count with its
        soft top-l membership p_j of the fused scores under those actions (l = the logged
        list's length), the box penalty over every candidate (`selection_actor_loss`)."""
        cfg = self.cfg
        with frozen(self.critic):
            c = self._candidates(batch, "", self.actor, self.critic)
        n_list = torch.minimum(batch["mask"].sum(-1), c["mask"].sum(-1))  # [B]
        if float(n_list.sum()) == 0:  # no candidates: nothing to select from
            return self._idle_actor_step()
        p = soft_top_l(c["score"], c["mask"], n_list, cfg.selection_temperature)
        parts = selection_actor_loss(c["q"], c["penalty"], p, c["mask"], n_list,
                                     self.set_weights, cfg.eta, cfg.lam)
        self.actor_opt.zero_grad(set_to_none=True)
        parts.total.backward()
        metrics = self._step_actor()
        with torch.no_grad():
            slot = torch.arange(p.shape[1], device=p.device)
            logged = (slot[None, :] < n_list[:, None]).to(p)  # the logged list: first l slots
            present = c["mask"] > 0
            metrics.update({
                "losses/actor": float(parts.total.detach()),
                "losses/actor_q": float(parts.q_term.detach()),
                "losses/box_penalty": float(parts.box_term.detach()),
                "losses/ensemble_std": float(parts.std_term.detach()),
                "q/pi_mean": float(c["q"].mean((0, 1))[present].mean()),
                "charts/in_box_frac": float((c["penalty"][present] == 0).float().mean()),
                # expected number of logged-list slots the actor's scores would swap out
                "charts/selection_swaps": float(((1.0 - p) * logged).sum(-1).mean()),
            })
        return metrics

    def _idle_actor_step(self) -> dict[str, float]:
        """An actor step with nothing to learn from: skipped, except under data-parallel
        training, where the other ranks step and this one joins with a zero gradient."""
        if self.grad_sync is not None:
            self.actor_opt.zero_grad(set_to_none=True)
            self._step_actor()
        return {}

    def _step_actor(self) -> dict[str, float]:
        """Average the actor's gradients over the ranks (missing ones count as zero), clip,
        step."""
        metrics: dict[str, float] = {}
        if self.grad_sync is not None:
            for p in self.actor.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            self.grad_sync(list(self.actor.parameters()))
        if self.cfg.grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.grad_clip)
            metrics["charts/actor_grad_norm"] = float(norm)
        self.actor_opt.step()
        return metrics

    @torch.no_grad()
    def _ensemble_diagnostics(self, batch: dict[str, torch.Tensor], b: int, slots: int
                              ) -> dict[str, float]:
        """Per critic set: mean and across-critic std of Q on the logged and on the policy's
        actions of the exposed pairs (one critic pass over both)."""
        idx = _present_index(batch["mask"])
        if idx.numel() == 0:
            return {}
        s = batch["pair_state"].reshape(b * slots, -1)[idx]  # [M, D]
        logged = batch["action"].reshape(b * slots, -1)[idx]  # [M, A]
        q = self.critic(torch.cat([s, s]), torch.cat([logged, self.actor(s)]))  # [S, m, 2M]
        out: dict[str, float] = {}
        for name, part in (("logged", q[..., :idx.numel()]), ("pi", q[..., idx.numel():])):
            mean = part.mean(dim=(1, 2))  # [S]
            std = part.std(1, unbiased=False).mean(1)  # [S]
            for i in range(q.shape[0]):
                out[f"q/set{i}_{name}_mean"] = float(mean[i])
                out[f"q/set{i}_{name}_std"] = float(std[i])
        return out

    # --- public -----------------------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor], diagnostics: bool = True
               ) -> dict[str, float]:
        """One critic step, an actor step every `actor_delay` calls, soft target updates.

        Raises NonFiniteError on a NaN or inf in the batch or in a loss (the networks may
        then hold the step's damage: the learner is not to be used further).

        Returns namespaced metrics (`losses/...`, `q/...`, `charts/...`); the actor's keys
        only on the calls that stepped the actor; the ensemble diagnostics (`q/set{i}_...`,
        one extra critic pass) when `diagnostics` (the trainer asks on the steps it logs).
        """
        batch = {k: v.to(self.device, dtype=torch.float32, non_blocking=True)
                 for k, v in batch.items()}
        b, slots = check_batch(batch, self.cfg.num_critic_sets, state_dim=self.state_dim,
                               candidates=self.cfg.actor_objective == "selection",
                               next_candidates=self.cfg.td_next == "selected_list")
        check_finite(batch, self.step)
        self.actor.train()
        self.critic.train()
        metrics = self._critic_step(batch, b, slots)
        if (self.step + 1) % self.cfg.actor_delay == 0:
            metrics.update(self._actor_step(batch, b, slots))
        diverged = {k: v for k, v in metrics.items()
                    if k.startswith("losses/") and not math.isfinite(v)}
        if diverged:
            raise NonFiniteError(f"training diverged at step {self.step}: {diverged}")
        soft_update(self.critic_target, self.critic, self.cfg.tau)
        soft_update(self.actor_target, self.actor, self.cfg.tau)
        self.step += 1
        if diagnostics:
            metrics.update(self._ensemble_diagnostics(batch, b, slots))
        return metrics

    @torch.no_grad()
    def act(self, pair_state: np.ndarray | torch.Tensor) -> np.ndarray:
        """Eval-mode actor: pair_state [..., D] (numpy or torch) -> float32 numpy [..., A]."""
        x = torch.as_tensor(pair_state, dtype=torch.float32, device=self.device)
        was_training = self.actor.training
        self.actor.eval()
        try:
            out = self.actor(x)
        finally:
            self.actor.train(was_training)
        return out.cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        """Every network, target network and optimizer, the step counter, the learner's RNG
        state and the config (for reference; `load_state_dict` does not apply it)."""
        return {
            "actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
            "actor_target": self.actor_target.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "step": self.step, "generator": self.generator.get_state(),
            "config": self.cfg.to_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`; the networks' shapes must match this learner's config."""
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
        # copies: torch's Optimizer.load_state_dict keeps the given moment tensors, which
        # would then be shared with (and stepped twice by) a live learner's optimizer
        self.actor_opt.load_state_dict(copy.deepcopy(state["actor_opt"]))
        self.critic_opt.load_state_dict(copy.deepcopy(state["critic_opt"]))
        self.step = int(state["step"])
        self.generator.set_state(state["generator"])

    def load_networks(self, state: dict[str, Any]) -> None:
        """Warm start: take the actor, the critics and both targets of another run's
        `state_dict()`; optimizers, step counter and RNG stay fresh. The shapes must match."""
        for name in ("actor", "critic", "actor_target", "critic_target"):
            getattr(self, name).load_state_dict(state[name])
