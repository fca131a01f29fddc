"""The experiment's data: the learners built from the plan, the simulated training days (with
progressive rounds, docs/ALGORITHM.md section 4) and the held-out day of the offline metrics.

`model.learners` is imported inside the functions: it loads torch, which
`import mtf.experiment` does not.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

from core.ds import day_range
from core.policy import FixedWeightsPolicy
from mtf.experiment.config import ExperimentConfig
from pipeline.config import PipelineConfig
from sim import World, simulate_day
from sim.simulator import evaluate_policy

log = logging.getLogger(__name__)


def make_learner(name: str, exp: ExperimentConfig, cfg: PipelineConfig,
                 seed: int | None = None):
    """Learner `name` with the experiment's config; `seed` (if given and the config has
    one) replaces its training seed."""
    from model.learners import RL_BASED, build_learner

    base = cfg.rl if name in RL_BASED else None
    params = dict(exp.params.get(name, {}))
    if seed is not None and has_seed(name):
        params["seed"] = seed
    return build_learner(name, params, base)


def has_seed(name: str) -> bool:
    """Whether learner `name`'s config has a training seed."""
    from model.learners import CONFIGS

    return "seed" in {f.name for f in dataclasses.fields(CONFIGS[name])}


def fit_context(exp: ExperimentConfig, cfg: PipelineConfig):
    """The FitContext of every fit of the run: the simulator's `evaluate_policy` as the ground
    truth of online searches (CEM, on its own search seeds), the profile's reward, the run's
    name as policy version."""
    from model.learners import FitContext

    return FitContext(ground_truth=functools.partial(evaluate_policy, cfg.sim),
                      reward=cfg.reward, version=exp.run_id)


def generate_data(exp: ExperimentConfig, cfg: PipelineConfig, ctx) -> tuple[Any, list[str]]:
    """The training logs (TrainData of all days) and the policy version serving each day."""
    from model.learners import TrainData

    world = World.build(cfg.sim)
    parts: list[TrainData] = []
    served: list[str] = []
    policy = FixedWeightsPolicy(version="fixed-v0")
    for d, ds in enumerate(day_range(exp.data.start_ds, exp.data.days)):
        logs = simulate_day(world, policy, ds, explore=True, return_states=True)
        parts.append(TrainData.from_logs(logs, cfg.reward))
        served.append(policy.version)
        log.info("day %s served by %s: %d requests", ds, policy.version, len(parts[-1]))
        if exp.data.behaviour != "fixed" and d + 1 < exp.data.days:
            sub = dataclasses.replace(ctx, version=f"round{d + 1}")
            learner = make_learner(exp.data.behaviour, exp, cfg)
            policy = learner.fit(TrainData.concat(parts), sub).policy
    return TrainData.concat(parts), served


def heldout_data(exp: ExperimentConfig, cfg: PipelineConfig):
    """The held-out day (`data.heldout_ds`) as TrainData: fresh logs served by the fixed
    weights with box exploration."""
    from model.learners import TrainData

    logs = simulate_day(World.build(cfg.sim), FixedWeightsPolicy(), exp.data.heldout_ds,
                        explore=True, return_states=True)
    return TrainData.from_logs(logs, cfg.reward)
