"""Simulator configuration: a typed dataclass with one doc line per field.

The behaviour model these parameters enter is written out in the docstring of
`sim/world.py`; the defaults are round numbers, not tuned to favour any fusion method.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from core import schema as S
from core.settings import from_dict


@dataclass
class SimConfig:
    # --- population and catalogue -------------------------------------------------
    seed: int = 7
    """World seed: catalogue, MTL miscalibration, the training population, daily draws."""
    n_users: int = 2000
    """Users in the population (each appears in raw_users every day)."""
    n_items: int = 3000
    """Items in the catalogue."""
    latent_dim: int = 8
    """k: dimension of the hidden user / item taste vectors."""
    # --- serving -----------------------------------------------------------------
    n_candidates: int = 50
    """N: candidates scored per request (popularity-weighted retrieval, no repeats)."""
    sessions_per_user: float = 1.0
    """Mean sessions per user per day: Poisson(sessions_per_user * (0.5 + activity))."""
    max_requests: int = 20
    """Hard cap on requests per session (<= schema.MAX_REQUESTS_PER_SESSION)."""
    request_gap_s: float = 5.0
    """Seconds between the end of one request's watching and the next request."""
    explore_half_width: float = 0.15
    """h: exploration noise eps ~ U(-h, h)^10 around the box centre, normalised units."""
    explore_per_candidate: bool = False
    """False: one noise draw per request shared by its candidates; True: one per candidate."""
    logged_candidates: int = 20
    """K: candidates per request written to raw_candidates, the top K by logged fused score
    (the L exposed ones first; all n_candidates when fewer); 0 logs none."""
    session_chunk: int = 8192
    """Sessions simulated together (memory bound); the output does not depend on it."""
    # --- MTL model (the biased predictions the fusion sees) --------------------------
    mtl_noise: float = 0.35
    """Std of the (zero-mean logistic) noise on the logit of every MTL prediction."""
    miscalibration: float = 1.0
    """Scale of the category / device / hour dependent logit miscalibration (0 = none)."""
    # --- true behaviour ------------------------------------------------------------
    watch_bias: float = -1.5
    """Intercept of the logit of the expected watched fraction."""
    watch_activity: float = 0.5
    """Gain of the user's activity on the logit of the watched fraction."""
    duration_elasticity: float = 0.6
    """Logit of the watched fraction drops by this times log(duration / 40 s)."""
    cellular_penalty: float = 0.3
    """Logit of the watched fraction drops by this on a cellular network."""
    watch_noise: float = 0.25
    """Scale w of the logistic noise added to the watched fraction."""
    interact_slope: float = 1.5
    """Slope of the like / share / collect logits in the user-item affinity."""
    interact_bias: tuple[float, float, float] = (-6.0, -8.0, -7.0)
    """Intercepts of the like / share / collect logits."""
    interact_unwatched: float = 0.1
    """Interaction probability multiplier when the view is not valid."""
    # --- satisfaction and exit -----------------------------------------------------
    sat_init: float = 0.5
    """Satisfaction at session start, before the activity term and noise."""
    sat_activity: float = 1.5
    """Satisfaction at session start gained per unit of activity (patient users)."""
    sat_init_noise: float = 0.3
    """Std of the Gaussian noise on the session's initial satisfaction."""
    sat_decay: float = 0.8
    """Fraction of the satisfaction carried over to the next request."""
    sat_valid: float = 0.25
    """Satisfaction gained per valid view in a request."""
    sat_interact: float = 0.3
    """Satisfaction gained per like / share / collect in a request."""
    sat_skip: float = 0.25
    """Satisfaction lost per quick skip in a request."""
    sat_fatigue: float = 0.25
    """Satisfaction lost per request (fatigue)."""
    sat_watch_fatigue: float = 0.2
    """Satisfaction lost per minute watched in a request (long watches tire)."""

    def __post_init__(self) -> None:
        self.interact_bias = tuple(float(x) for x in self.interact_bias)  # yaml gives lists
        checks = {
            "n_users >= 1": self.n_users >= 1,
            "n_items >= n_candidates": self.n_items >= self.n_candidates,
            f"n_candidates >= LIST_LEN ({S.LIST_LEN})": self.n_candidates >= S.LIST_LEN,
            "1 <= max_requests <= MAX_REQUESTS_PER_SESSION":
                1 <= self.max_requests <= S.MAX_REQUESTS_PER_SESSION,
            "sessions_per_user >= 0": self.sessions_per_user >= 0,
            "0 <= explore_half_width <= 1": 0 <= self.explore_half_width <= 1,
            "request_gap_s >= 0.001": self.request_gap_s >= 0.001,
            "session_chunk >= 1": self.session_chunk >= 1,
            f"logged_candidates 0 or >= LIST_LEN ({S.LIST_LEN})":
                self.logged_candidates == 0 or self.logged_candidates >= S.LIST_LEN,
            "latent_dim >= 1": self.latent_dim >= 1,
            "watch_noise > 0": self.watch_noise > 0,
            "mtl_noise >= 0": self.mtl_noise >= 0,
            "len(interact_bias) == 3": len(self.interact_bias) == 3,
            "0 <= interact_unwatched <= 1": 0 <= self.interact_unwatched <= 1,
        }
        bad = [rule for rule, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid SimConfig: {', '.join(bad)}")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["interact_bias"] = list(self.interact_bias)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimConfig:
        """Build from a plain dict; unknown keys raise KeyError (nothing ignored silently)."""
        return from_dict(cls, d)
