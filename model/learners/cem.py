"""`cem`: cross-entropy-method search of ONE global fusion weight vector.

The papers' production baseline tuned one weight vector by an online search (evolution
strategies / Bayesian optimisation on live traffic). We mirror that: each candidate vector is
scored ONLINE, by its simulated UVC (or UDT) on search populations whose seeds are distinct
from the evaluation seeds (the experiment checks this), with common random numbers across
candidates of an iteration. It does not read the logs: an offline NCIS score of a fixed
vector far from the logged boxes would rest on a handful of importance weights.

Per iteration: draw `population` vectors from N(mean, std^2) (clipped to [-1, 1]), score
them, refit mean / std to the best `elite_frac` (std floored at `min_std`). The returned
policy is the final mean. `score_fn` replaces the simulator (tests plant an optimum).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core import schema as S
from core.fusion import default_action_norm
from core.policy import FixedWeightsPolicy
from model.learners.base import FitContext, Fitted
from model.learners.data import TrainData

OBJECTIVES = ("uvc", "udt")


@dataclass
class CEMConfig:
    iterations: int = 6
    """CEM iterations."""
    population: int = 12
    """Candidate vectors scored per iteration."""
    elite_frac: float = 0.25
    """Share of the best candidates the next distribution is fitted to."""
    init_std: float = 0.3
    """Initial std of every coordinate (normalised action units), around the default."""
    min_std: float = 0.02
    """Floor of the std (keeps the search from collapsing on a noisy elite)."""
    objective: str = "uvc"
    """Simulator metric maximised: uvc or udt."""
    search_seeds: tuple[int, ...] = (7001, 7002)
    """Populations the online search is scored on (must differ from the evaluation seeds)."""
    search_users: int = 1000
    """Users per search population."""
    seed: int = 0
    """Seed of the candidate draws."""

    def __post_init__(self) -> None:
        self.search_seeds = tuple(int(s) for s in self.search_seeds)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.population < 2 or not 0.0 < self.elite_frac <= 1.0:
            raise ValueError("need population >= 2 and 0 < elite_frac <= 1")
        if not self.search_seeds:
            raise ValueError("search_seeds must not be empty")


class CEMLearner:
    name = "cem"
    level = "fixed"

    def __init__(self, cfg: CEMConfig | None = None,
                 score_fn: Callable[[np.ndarray], float] | None = None):
        self.cfg = cfg or CEMConfig()
        self.score_fn = score_fn

    def _simulator_score(self, ctx: FitContext) -> Callable[[np.ndarray], float]:
        cfg = self.cfg
        truth = ctx.ground_truth
        if truth is None:
            raise ValueError("cem searches online: give FitContext.ground_truth (the "
                             "simulator's evaluate_policy) or a score_fn")

        def score(a: np.ndarray) -> float:
            pol = FixedWeightsPolicy(a, version=f"{ctx.version}-cem-search")
            return float(np.mean([truth(pol, seed=s, n_users=cfg.search_users)[cfg.objective]
                                  for s in cfg.search_seeds]))

        return score

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        cfg = self.cfg
        score = self.score_fn or self._simulator_score(ctx)
        rng = np.random.default_rng(cfg.seed)
        mean = default_action_norm().astype(np.float64)
        std = np.full(S.ACTION_DIM, cfg.init_std)
        n_elite = max(1, int(round(cfg.elite_frac * cfg.population)))
        history: dict[str, list[float]] = {"cem/best": [], "cem/elite_mean": [], "cem/std": []}
        for _ in range(cfg.iterations):
            cand = np.clip(mean + std * rng.standard_normal((cfg.population, S.ACTION_DIM)),
                           -1.0, 1.0)
            scores = np.array([score(c) for c in cand])
            elite = cand[np.argsort(-scores)[:n_elite]]
            mean = elite.mean(0)
            std = np.maximum(elite.std(0), cfg.min_std)
            history["cem/best"].append(float(scores.max()))
            history["cem/elite_mean"].append(float(np.sort(scores)[-n_elite:].mean()))
            history["cem/std"].append(float(std.mean()))
        policy = FixedWeightsPolicy(mean.astype(np.float32), version=f"{ctx.version}-cem")
        return Fitted(policy, history, {"steps": float(cfg.iterations * cfg.population)})
