"""The fusion formula and the action mapping (docs/ALGORITHM.md section 1), in numpy.

    score(u, j) = prod_i (obj_i + bias_i) ** power_i
    log score   = sum_i power_i * log(obj_i + bias_i)

The actor emits `a in [-1, 1]^10` (normalised units); `to_physical` maps it affinely to
power in POWER_RANGE and bias in BIAS_RANGE. We rank by the log score (same order, no
overflow).
"""

from __future__ import annotations

import numpy as np

from core.schema import (
    ACTION_DIM,
    BIAS_RANGE,
    DEFAULT_BIAS,
    DEFAULT_POWER,
    OBJECTIVE_HEADS,
    OBJECTIVES,
    POWER_RANGE,
)

N_OBJ = len(OBJECTIVES)
ACTION_LOW = np.array([POWER_RANGE[0]] * N_OBJ + [BIAS_RANGE[0]] * N_OBJ, dtype=np.float64)
"""Physical value of each action dim at normalised -1 (power_1..5, bias_1..5)."""
ACTION_HIGH = np.array([POWER_RANGE[1]] * N_OBJ + [BIAS_RANGE[1]] * N_OBJ, dtype=np.float64)
"""Physical value of each action dim at normalised +1."""
_LO, _HI = ACTION_LOW, ACTION_HIGH


def to_physical(action_norm: np.ndarray) -> np.ndarray:
    """[..., 10] normalised action in [-1, 1] -> [..., 10] (power_1..5, bias_1..5)."""
    a = np.clip(np.asarray(action_norm, dtype=np.float64), -1.0, 1.0)
    assert a.shape[-1] == ACTION_DIM, a.shape
    return _LO + (a + 1.0) * 0.5 * (_HI - _LO)


def to_normalized(action_phys: np.ndarray) -> np.ndarray:
    """Inverse of `to_physical`."""
    p = np.asarray(action_phys, dtype=np.float64)
    assert p.shape[-1] == ACTION_DIM, p.shape
    return 2.0 * (p - _LO) / (_HI - _LO) - 1.0


def default_action_norm() -> np.ndarray:
    """The production default (power 1, bias 0.1 for every objective), normalised. [10]"""
    phys = np.array([DEFAULT_POWER] * N_OBJ + [DEFAULT_BIAS] * N_OBJ, dtype=np.float64)
    return to_normalized(phys)


def objectives(preds: np.ndarray) -> np.ndarray:
    """[..., NUM_HEADS] head predictions -> [..., 5] fused objectives (noskip = 1 - skip)."""
    obj = np.asarray(preds, dtype=np.float64)[..., list(OBJECTIVE_HEADS)].copy()
    obj[..., -1] = 1.0 - obj[..., -1]
    return obj


def log_fused_score(preds: np.ndarray, action_norm: np.ndarray) -> np.ndarray:
    """log of prod_i (obj_i + bias_i) ** power_i.

    preds: [..., NUM_HEADS]; action_norm: broadcastable to [..., 10]. Returns [...].
    """
    phys = to_physical(action_norm)
    power, bias = phys[..., :N_OBJ], phys[..., N_OBJ:]
    obj = np.clip(objectives(preds), 0.0, 1.0)
    return np.sum(power * np.log(obj + bias), axis=-1)
