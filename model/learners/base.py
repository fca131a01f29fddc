"""The one protocol every learner implements, and what fitting returns.

    learner = build_learner(name, params)           # model/learners/__init__.py
    fitted = learner.fit(data, ctx)                 # TrainData (in memory) -> Fitted
    fitted.policy                                   # a sim Policy: serve it, score it

The policy is what the simulator serves (`sim.simulate_day`, `sim.evaluate_policy`) and what
the offline metrics score (`policy.act(user_state, pair_state)` on held-out logs), so every
learner is compared through exactly the same code path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from core.policy import Policy
from core.reward import RewardConfig
from model.learners.data import TrainData


class GroundTruth(Protocol):
    """A simulator's ground-truth evaluation of a policy (metrics such as sim/uvc)."""

    def __call__(self, policy: Policy, *, seed: int, n_users: int) -> dict[str, float]: ...


@dataclass
class FitContext:
    """What a learner may use besides the logs."""

    ground_truth: GroundTruth | None = None
    """The simulator's evaluation, `ground_truth(policy, seed=, n_users=) -> metrics` (e.g.
    `functools.partial(sim.evaluate_policy, sim_cfg)`): only the online search baseline
    `cem` queries it; offline learners never see it."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward weights the logs' rewards were computed with."""
    version: str = "exp"
    """Prefix of the policy version strings (logged as raw_requests.policy_version)."""


@dataclass
class Fitted:
    """The result of `Learner.fit`."""

    policy: Policy
    """The learned policy (level fixed, user or pair)."""
    history: dict[str, list[float]] = field(default_factory=dict)
    """Training curves, one value per logged step (e.g. losses/critic)."""
    info: dict[str, float] = field(default_factory=dict)
    """Scalar facts about the fit (steps, seconds, final losses)."""


class Learner(Protocol):
    name: str
    """Registry name (fixed, cem, batchrl_mtf, unified_rl, enhanced_rl)."""
    level: str
    """Level of the policy it returns: fixed, user or pair."""

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted: ...


def record(history: dict[str, list[float]], metrics: dict[str, float]) -> None:
    """Append every metric of one step to the history."""
    for k, v in metrics.items():
        history.setdefault(k, []).append(float(v))


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seeded torch sampling inside the block, the caller's global RNG restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def torch_policy_fn(module: torch.nn.Module, level: str
                    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """fn(user_state, pair_state) -> actions of an eval-mode actor on the level's state."""
    module.eval()

    def fn(user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        x = user_state if level == "user" else pair_state
        with torch.inference_mode():
            return module(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()

    return fn
