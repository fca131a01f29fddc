"""Simulator configuration (typed, one doc line per field)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass
class SimConfig:
    seed: int = 7
    """World seed: items, miscalibration of the MTL model, and the daily population."""
    n_users: int = 2000
    """Users in the population."""
    n_items: int = 3000
    """Items in the catalogue."""
    n_candidates: int = 50
    """N: candidates scored per request (retrieval output)."""
    sessions_per_user: float = 1.0
    """Mean sessions per user per day (Poisson, scaled by the user's activity)."""
    max_requests: int = 20
    """Cap on requests per session (<= schema.MAX_REQUESTS_PER_SESSION)."""
    explore_half_width: float = 0.15
    """Half-width of the uniform exploration box, normalised action units."""
    explore_per_candidate: bool = False
    """False: one noise draw per request shared by its candidates; True: one per candidate."""
    latent_dim: int = 8
    """Dimension of the hidden user / item taste vectors."""
    mtl_noise: float = 0.35
    """Std of the logit noise of the MTL predictions."""
    miscalibration: float = 1.0
    """Scale of the category / device / hour dependent MTL miscalibration (0 = calibrated)."""
    watch_noise: float = 0.15
    """Scale of the logistic noise on the watched fraction."""
    sat_decay: float = 0.8
    """Satisfaction carried over from one request to the next."""
    sat_valid: float = 0.15
    """Satisfaction gained per valid view in a request."""
    sat_interact: float = 0.3
    """Satisfaction gained per like / share / collect."""
    sat_skip: float = 0.30
    """Satisfaction lost per skipped item."""
    sat_fatigue: float = 0.3
    """Satisfaction lost per request (fatigue)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise KeyError(f"unknown SimConfig keys: {sorted(unknown)}")
        return cls(**d)
