"""EnhancedRL hyper-parameters (ALGORITHM.md section 6), one doc line per field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class EnhancedRLConfig:
    gamma: float = 0.9
    """Discount between consecutive requests of a session."""
    actor_lr: float = 1e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 2e-4
    """Adam learning rate of the critic ensemble."""
    tau: float = 0.005
    """Polyak factor of the soft target updates (every critic step)."""
    batch_size: int = 256
    """Request lists per batch."""
    num_critic_sets: int = 2
    """q: critic sets, one per reward part (watch time / the rest)."""
    critics_per_set: int = 10
    """m: critics per set."""
    critic_hidden: tuple[int, ...] = (256, 256)
    """Hidden widths of every critic MLP."""
    actor_hidden: tuple[int, ...] = (256, 128)
    """Hidden widths of the actor's pair MLP."""
    user_tower_hidden: int = 64
    """Width of the actor's user tower (on the user block of the state)."""
    eta: float = 1.0
    """Weight of the box penalty d in the actor loss."""
    lam: float = 0.5
    """lambda: weight of the ensemble-std penalty in the actor loss."""
    kappa_d: float = 10.0
    """Sharpness of the exponential box penalty d."""
    kappa_phi: float = 10.0
    """Sharpness of the target multiplier phi."""
    actor_delay: int = 2
    """Actor step every this many critic steps."""
    half_width: float = 0.15
    """Half-width of the exploration box (normalised units), as logged."""
    set_weights: tuple[float, ...] = (1.0, 1.0)
    """w^(i): weight of critic set i in the actor loss."""
    td_mode: str = "list"
    """[R] 'list': one TD error per request list (paper); 'pair': per-pair TD, mean next value."""
    ensemble_target: str = "own"
    """[R] 'own': each critic bootstraps from its own target (paper); 'redq_min': min over a
    random subset of each set's targets."""
    redq_subset: int = 2
    """Subset size for ensemble_target = 'redq_min'."""
    steps: int = 2000
    """Gradient steps per training run."""
    seed: int = 0
    """Seed of network init and any sampling in the learner."""
    grad_clip: float | None = None
    """Clip gradient norm to this value (None: no clipping)."""

    def __post_init__(self) -> None:
        self.critic_hidden = tuple(self.critic_hidden)
        self.actor_hidden = tuple(self.actor_hidden)
        self.set_weights = tuple(self.set_weights)
        if self.td_mode not in ("list", "pair"):
            raise ValueError(f"td_mode must be list or pair, got {self.td_mode!r}")
        if self.ensemble_target not in ("own", "redq_min"):
            raise ValueError(f"ensemble_target must be own or redq_min, got "
                             f"{self.ensemble_target!r}")
        if len(self.set_weights) != self.num_critic_sets:
            raise ValueError("set_weights needs one weight per critic set")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnhancedRLConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise KeyError(f"unknown EnhancedRLConfig keys: {sorted(unknown)}")
        return cls(**d)
