"""The online A/B: users split into arms by a stable hash, and the lift of an arm against
the holdout with its confidence interval.

Arms (docs/OPERATIONS.md, "Online A/B"):
- `current`: the policy the registry serves (the rest of the traffic);
- `holdout`: the fixed default weights, never changed by a publication: the baseline every
  lift is measured against;
- `canary`: optionally, the newest candidate the gate did not publish.

A user's arm depends only on (salt, user_id): the same every day, whatever else is in the
logs, so a user is never served by two arms and an arm's population does not drift. With
shares s_1..s_k (summing to 1), the user whose hash falls in [s_1 + .. + s_{j-1}, s_1 + ..
+ s_j) of [0, 1) is in arm j.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

ARMS = ("current", "holdout", "canary")
"""Every arm name, in the order shares are laid on [0, 1)."""
HOLDOUT = "holdout"
Z95 = 1.959963984540054
"""Two-sided 95% normal quantile."""

_M64 = (1 << 64) - 1


def _salt_key(salt: str) -> int:
    return int.from_bytes(hashlib.sha256(salt.encode()).digest()[:8], "little")


def user_bucket(user_ids: np.ndarray, salt: str) -> np.ndarray:
    """Each user's point of [0, 1): splitmix64 of (user_id xor the salt's key), top 53 bits."""
    x = np.asarray(user_ids).astype(np.uint64) ^ np.uint64(_salt_key(salt))
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def split_shares(holdout: float, canary: float = 0.0) -> tuple[tuple[str, float], ...]:
    """(arm, share) of every arm with a share > 0; `current` gets the rest."""
    if not (0.0 <= holdout < 1.0 and 0.0 <= canary < 1.0 and holdout + canary < 1.0):
        raise ValueError(f"A/B shares need 0 <= holdout, canary and holdout + canary < 1, "
                         f"got holdout {holdout}, canary {canary}")
    shares = {"current": 1.0 - holdout - canary, "holdout": holdout, "canary": canary}
    return tuple((a, shares[a]) for a in ARMS if shares[a] > 0)


def assign_arms(user_ids: np.ndarray, shares: Sequence[tuple[str, float]], salt: str
                ) -> np.ndarray:
    """Index into `shares` of each user's arm (int64, one per user id)."""
    if not shares:
        raise ValueError("no arm to assign")
    cuts = np.cumsum([s for _, s in shares])[:-1]
    return np.searchsorted(cuts, user_bucket(user_ids, salt), side="right").astype(np.int64)


@dataclass(frozen=True)
class Lift:
    """Relative change of an arm's mean against the holdout's: value and 95% CI."""

    value: float
    low: float
    high: float


def lift(mean: float, se: float, base_mean: float, base_se: float) -> Lift | None:
    """mean / base_mean - 1 with a delta-method 95% CI for two independent arms:
    var(a / b) ~ (se_a / b)^2 + (a se_b / b^2)^2. None when the base mean is not positive."""
    if not base_mean > 0 or not all(map(math.isfinite, (mean, se, base_mean, base_se))):
        return None
    r = mean / base_mean
    half = Z95 * math.hypot(se / base_mean, mean * base_se / base_mean ** 2)
    return Lift(r - 1.0, r - 1.0 - half, r - 1.0 + half)


def lift_text(row: Mapping[str, Any], metric: str, digits: int = 2, missing: str = "-"
              ) -> str:
    """`<metric>_lift [<metric>_lift_low, <metric>_lift_high]` of a row as signed
    percentages, e.g. "-16.37% [-29.11%, -3.63%]"; `missing` for an absent value (None or
    NaN)."""

    def pct(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return missing
        return f"{100 * float(v):+.{digits}f}%"

    return (f"{pct(row.get(f'{metric}_lift'))} [{pct(row.get(f'{metric}_lift_low'))}, "
            f"{pct(row.get(f'{metric}_lift_high'))}]")


def is_regression(lift_: Lift | None, threshold: float) -> bool:
    """An arm worse than the holdout beyond the threshold: the lift is below -threshold and
    its whole 95% CI is below 0 (a drop the noise of the day does not explain)."""
    return lift_ is not None and lift_.value < -threshold and lift_.high < 0.0
