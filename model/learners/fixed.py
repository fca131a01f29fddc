"""`fixed`: the production default fusion weights (power 1, bias 0.1), learns nothing.

The floor every learner must beat, and the behaviour policy of the first simulated day.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.policy import FixedWeightsPolicy
from model.learners.base import FitContext, Fitted
from model.learners.data import TrainData


@dataclass
class FixedConfig:
    """No parameters: the weights are core/fusion.py default_action_norm()."""


class FixedLearner:
    name = "fixed"
    level = "fixed"

    def __init__(self, cfg: FixedConfig | None = None):
        self.cfg = cfg or FixedConfig()

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        return Fitted(FixedWeightsPolicy(version=f"{ctx.version}-fixed"), info={"steps": 0.0})
