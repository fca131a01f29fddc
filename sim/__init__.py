"""Seeded, vectorized user simulator: the embedded stand-in for production logs and the
ground truth for policy quality. Light at import (numpy only when used)."""

from __future__ import annotations

from typing import Any

__all__ = ["SimConfig", "World", "DayLogs", "simulate_day", "evaluate_policy",
           "FixedWeightsPolicy", "TorchScriptPolicy", "CallablePolicy", "Policy"]

_WHERE = {"SimConfig": "sim.config", "World": "sim.world", "DayLogs": "sim.simulator",
          "simulate_day": "sim.simulator", "evaluate_policy": "sim.simulator",
          "FixedWeightsPolicy": "sim.policies", "TorchScriptPolicy": "sim.policies",
          "CallablePolicy": "sim.policies", "Policy": "sim.policies"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(name)
