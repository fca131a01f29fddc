"""Seeded, vectorized user simulator: the embedded stand-in for production logs and the
ground truth for policy quality (docs/DESIGN.md).

    World.build(cfg)                                  users, items, true and MTL models
    simulate_day(world, policy, ds, explore=True)     -> DayLogs (the bronze tables)
    evaluate_policy(cfg, policy, seed=...)            -> {"uvc", "udt", ...} ("online A/B")

Light at import: the submodules (numpy, pandas) load on first attribute access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SimConfig", "World", "DayLogs", "Arms", "simulate_day", "run_day",
           "evaluate_policy"]

_WHERE = {"SimConfig": "sim.config", "World": "sim.world", "DayLogs": "sim.simulator",
          "Arms": "sim.simulator",
          "simulate_day": "sim.simulator", "run_day": "sim.simulator",
          "evaluate_policy": "sim.simulator"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
