"""The pair reward, written once (docs/ALGORITHM.md section 2).

    r = sum_i w_i v_i, split over the two critic sets:
      set 0 ("watch"): w_watch * watch_time_s / 60
      set 1 ("other"): w_valid * valid + w_like * like + w_share * share + w_collect * collect

`critic_rewards` uses only `+` and `*`, so the same function computes the reward of numpy
arrays (the in-memory learners) and of Spark columns (`jobs/build_enhanced_state.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class RewardConfig:
    """Pair reward weights, split over two critic sets."""

    w_watch: float = 1.0
    """Weight of watch time, per minute watched (critic set 0)."""
    w_valid: float = 1.0
    """Weight of a valid consumption (watch > 10 s) (critic set 1)."""
    w_like: float = 1.0
    """Weight of a like (critic set 1)."""
    w_share: float = 2.0
    """Weight of a share (critic set 1)."""
    w_collect: float = 1.5
    """Weight of a collect (critic set 1)."""


def critic_rewards(w: RewardConfig, watch_time_s: Any, valid: Any, like: Any, share: Any,
                   collect: Any) -> tuple[Any, Any]:
    """(critic-set 0, critic-set 1) reward of pairs from their feedback values (numpy arrays
    or Spark columns; nulls must be filled by the caller)."""
    watch = watch_time_s * (w.w_watch / 60.0)
    other = w.w_valid * valid + w.w_like * like + w.w_share * share + w.w_collect * collect
    return watch, other
