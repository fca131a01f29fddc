"""EnhancedRL hyper-parameters (docs/ALGORITHM.md section 6), one doc line per field.

Every [R] choice of docs/ALGORITHM.md (our own, where the papers are silent) is a field here,
so that the paper's exact form can be dropped in later without touching the learner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from core.settings import from_dict

TD_MODES = ("list", "pair")
ENSEMBLE_TARGETS = ("own", "redq_min")
ACTOR_OBJECTIVES = ("exposed", "selection")
OBJECTIVE_OF = {"enhanced_rl": "exposed", "enhanced_rl_selection": "selection"}
"""The EnhancedRL learners by name (model/learners, the pipeline's `algo`) and the actor
objective that defines each."""
TD_NEXT = ("logged_list", "selected_list")


@dataclass
class EnhancedRLConfig:
    gamma: float = 0.9
    """Discount between consecutive requests of a session (BatchRL-MTF used 0.95)."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 2e-4
    """Adam learning rate of the critic ensemble."""
    tau: float = 0.005
    """Polyak factor of the soft target updates, applied to BOTH targets after every call."""
    batch_size: int = 256
    """Request lists per batch (each list holds up to schema.LIST_LEN pairs)."""
    num_critic_sets: int = 2
    """q: critic sets, one per reward part (set 0 = watch time, set 1 = the rest)."""
    critics_per_set: int = 10
    """m: critics per set, each with its own target network."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every critic MLP."""
    actor_hidden: tuple[int, ...] = (256, 128)
    """Hidden widths of the actor's pair MLP (after the user tower)."""
    user_tower_hidden: int = 64
    """Width of the actor's user tower (one ReLU layer on the user block of the state)."""
    eta: float = 1.0
    """Weight of the box penalty d(mu(s); B(s)) in the actor loss."""
    lam: float = 0.5
    """lambda: weight of the ensemble-std penalty sum_i w_i sigma_i in the actor loss."""
    kappa_d: float = 10.0
    """Sharpness of the exponential box penalty d (actor loss)."""
    kappa_phi: float = 10.0
    """Sharpness of the target multiplier phi (critic targets)."""
    actor_delay: int = 2
    """One actor step every this many critic steps (the 2nd, 4th, ... call of `update`)."""
    half_width: float = 0.15
    """h: half-width of the logged exploration box [mu_bp - h, mu_bp + h], normalised units."""
    set_weights: tuple[float, ...] = (1.0, 1.0)
    """w^(i): weight of critic set i in the actor loss (one per critic set)."""
    td_mode: str = "list"
    """[R] 'list': one TD error per request list (paper); 'pair': per-pair TD whose bootstrap
    is the mean over the next list's pairs (ablation)."""
    ensemble_target: str = "own"
    """[R] 'own': each critic bootstraps from its own target (paper); 'redq_min': every critic
    of a set bootstraps from the min over a random subset of that set's targets (REDQ)."""
    redq_subset: int = 2
    """Size of the random subset per set for ensemble_target = 'redq_min'."""
    actor_objective: str = "exposed"
    """'exposed': the paper's actor loss over the logged exposed pairs; 'selection': over
    the request's logged candidates, each weighted by its soft top-l membership under the
    actor's fused scores (docs/ALGORITHM.md section 9; needs the batch's cand_* tensors)."""
    selection_temperature: float = 0.03
    """T of the soft top-l membership, in log fused score units (smaller: closer to the
    hard top-l, a gradient only near the margin)."""
    selection_candidates: int = 20
    """K: the first this many logged candidates of each request enter the selection (fewer
    when the batch holds fewer)."""
    td_next: str = "logged_list"
    """'logged_list': the TD target bootstraps from the next request's exposed pairs (paper);
    'selected_list': from the next request's candidates weighted by their soft top-l
    membership under the target actor (needs the batch's next_cand_* tensors)."""
    steps: int = 2000
    """Gradient steps (calls of `update`) per training run."""
    seed: int = 0
    """Seed of network init and of the learner's own sampling (REDQ subsets)."""
    grad_clip: float | None = None
    """Clip each network's gradient norm to this value (None: no clipping)."""
    # --- read by the trainer (jobs/train.py), not by the learner ---------------------------
    log_every: int = 50
    """Trainer: one row of train_metrics.jsonl (with the ensemble diagnostics) every this
    many steps, and at the last step."""
    checkpoint_every: int = 200
    """Trainer: save a resumable checkpoint every this many steps (0: never)."""
    warm_start: str | None = None
    """Trainer: initialise the networks and their targets from this artifact folder or its
    checkpoint.pt (e.g. the published policy's); None: fresh init from `seed`."""

    def __post_init__(self) -> None:
        # YAML / JSON give lists: keep tuples so that configs compare and hash the same.
        self.critic_hidden = tuple(int(x) for x in self.critic_hidden)
        self.actor_hidden = tuple(int(x) for x in self.actor_hidden)
        self.set_weights = tuple(float(x) for x in self.set_weights)
        if self.td_mode not in TD_MODES:
            raise ValueError(f"td_mode must be one of {TD_MODES}, got {self.td_mode!r}")
        if self.ensemble_target not in ENSEMBLE_TARGETS:
            raise ValueError(f"ensemble_target must be one of {ENSEMBLE_TARGETS}, "
                             f"got {self.ensemble_target!r}")
        if self.actor_objective not in ACTOR_OBJECTIVES:
            raise ValueError(f"actor_objective must be one of {ACTOR_OBJECTIVES}, "
                             f"got {self.actor_objective!r}")
        if self.td_next not in TD_NEXT:
            raise ValueError(f"td_next must be one of {TD_NEXT}, got {self.td_next!r}")
        if self.td_next == "selected_list" and self.td_mode != "list":
            raise ValueError("td_next = 'selected_list' needs td_mode = 'list'")
        if self.selection_temperature <= 0.0 or self.selection_candidates < 1:
            raise ValueError(f"need selection_temperature > 0 and selection_candidates >= 1, "
                             f"got {self.selection_temperature}, {self.selection_candidates}")
        if len(self.set_weights) != self.num_critic_sets:
            raise ValueError(f"set_weights needs one weight per critic set: "
                             f"{len(self.set_weights)} != {self.num_critic_sets}")
        if not 1 <= self.redq_subset <= self.critics_per_set:
            raise ValueError(f"redq_subset must be in [1, critics_per_set], got "
                             f"{self.redq_subset}")
        if self.actor_delay < 1:
            raise ValueError(f"actor_delay must be >= 1, got {self.actor_delay}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if self.half_width <= 0.0:
            raise ValueError(f"half_width must be > 0, got {self.half_width}")
        if self.grad_clip is not None and self.grad_clip <= 0.0:
            raise ValueError(f"grad_clip must be None or > 0, got {self.grad_clip}")
        if self.steps < 1 or self.log_every < 1 or self.checkpoint_every < 0:
            raise ValueError(f"need steps >= 1, log_every >= 1, checkpoint_every >= 0, got "
                             f"{self.steps}, {self.log_every}, {self.checkpoint_every}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnhancedRLConfig:
        """Inverse of `to_dict`; unknown keys raise KeyError (a typo must not pass silently)."""
        return from_dict(cls, d)
