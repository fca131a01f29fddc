"""`enhanced_rl`: EnhancedRL (pair level), model/enhanced_rl.py used as is.

The learner's `update(batch)` is fed uniform minibatches of request lists built in memory
(TrainData.pair_batch, the same contract the Petastorm loader yields); the policy is its
eval-mode pair actor applied to every candidate of a request.
"""

from __future__ import annotations

import time

from core.policy import CallablePolicy
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.learners.base import FitContext, Fitted, record
from model.learners.data import TrainData, minibatches
from model.learners.unified_rl import check_half_width


class EnhancedRLLearner:
    name = "enhanced_rl"
    level = "pair"

    def __init__(self, cfg: EnhancedRLConfig | None = None):
        self.cfg = cfg or EnhancedRLConfig()
        if self.cfg.actor_objective == "selection":
            self.name = "enhanced_rl_selection"
        self.learner = EnhancedRL(self.cfg)

    def fit(self, data: TrainData, ctx: FitContext) -> Fitted:
        check_half_width(self.cfg.half_width, data)
        t0 = time.perf_counter()
        history: dict[str, list[float]] = {}
        for idx in minibatches(len(data), self.cfg.batch_size, self.cfg.steps, self.cfg.seed):
            record(history, self.learner.update(data.pair_batch(
                idx, candidates=self.cfg.actor_objective == "selection",
                next_candidates=self.cfg.td_next == "selected_list")))
        learner = self.learner
        policy = CallablePolicy(lambda u, p: learner.act(p), "pair",
                                f"{ctx.version}-{self.name}")
        return Fitted(policy, history, {"steps": float(self.cfg.steps),
                                        "seconds": time.perf_counter() - t0})
