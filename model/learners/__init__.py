"""All MTF learners behind one protocol (model/learners/base.py), selected by name + config.

    fixed         production default weights                         (level fixed)
    cem           CEM search of one global weight vector, online      (level fixed)
    batchrl_mtf   BatchRL-MTF: user-level BCQ                         (level user)
    unified_rl    UnifiedRL: user-level actor-critic with box penalty (level user)
    enhanced_rl   EnhancedRL: pair-level, model/enhanced_rl.py        (level pair)
    enhanced_rl_selection   EnhancedRL with the selection-aware actor objective
                  (actor_objective = 'selection', docs/ALGORITHM.md section 9) (level pair)

They share the in-memory data (model/learners/data.py), the networks and losses of model/,
and return a sim Policy, so one evaluation path scores them all (mtf/experiment/).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.settings import from_dict
from model.config import OBJECTIVE_OF, EnhancedRLConfig
from model.learners.base import FitContext, Fitted, Learner
from model.learners.batchrl_mtf import BatchRLMTFConfig, BatchRLMTFLearner
from model.learners.cem import CEMConfig, CEMLearner
from model.learners.data import TrainData
from model.learners.enhanced import EnhancedRLLearner
from model.learners.fixed import FixedConfig, FixedLearner
from model.learners.unified_rl import UnifiedRLLearner

__all__ = ["LEARNERS", "CONFIGS", "DEFAULTS", "RL_BASED", "FitContext", "Fitted", "Learner",
           "TrainData", "build_learner", "learner_config"]

LEARNERS: dict[str, type] = {
    "fixed": FixedLearner, "cem": CEMLearner, "batchrl_mtf": BatchRLMTFLearner,
    "unified_rl": UnifiedRLLearner, "enhanced_rl": EnhancedRLLearner,
    "enhanced_rl_selection": EnhancedRLLearner}
"""Registry name -> learner class (constructor takes its config)."""
CONFIGS: dict[str, type] = {
    "fixed": FixedConfig, "cem": CEMConfig, "batchrl_mtf": BatchRLMTFConfig,
    "unified_rl": EnhancedRLConfig, "enhanced_rl": EnhancedRLConfig,
    "enhanced_rl_selection": EnhancedRLConfig}
"""Registry name -> config dataclass (UnifiedRL reuses EnhancedRLConfig's fields)."""
DEFAULTS: dict[str, dict[str, Any]] = {
    "unified_rl": {"actor_objective": "exposed", "td_next": "logged_list"},
    **{name: {"actor_objective": obj} for name, obj in OBJECTIVE_OF.items()}}
"""Registry name -> the config values that define the method (over `base`, under `params`)."""
RL_BASED = ("unified_rl", "enhanced_rl", "enhanced_rl_selection")
"""Learners whose config starts from the profile's `rl` section."""


def learner_config(name: str, params: dict[str, Any] | None = None,
                   base: Any | None = None) -> Any:
    """The config of learner `name`: `base` (or the class defaults) with `params` merged in.
    Unknown keys raise KeyError, so a typo in a YAML profile cannot pass silently."""
    if name not in CONFIGS:
        raise KeyError(f"unknown learner {name!r}; known: {', '.join(LEARNERS)}")
    values = dataclasses.asdict(base) if base is not None else {}
    return from_dict(CONFIGS[name], {**values, **DEFAULTS.get(name, {}), **(params or {})},
                     where=f"{name}.")


def build_learner(name: str, params: dict[str, Any] | None = None,
                  base: Any | None = None) -> Learner:
    """A fresh learner `name` with `learner_config(name, params, base)`."""
    return LEARNERS[name](learner_config(name, params, base))
