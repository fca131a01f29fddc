"""The experiment's statistics (numpy only): the 95% t-interval over seeds, paired relative
changes, and the Spearman / Kendall rank correlations of offline metrics with the truth."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201,
         2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086)
"""Student t 0.975 quantiles for 1..20 degrees of freedom (1.96 beyond)."""


def mean_ci(x: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of the 95% t-interval over independent values (NaN CI if n < 2)."""
    a = np.asarray(x, np.float64)
    m = float(a.mean())
    if len(a) < 2:
        return m, float("nan"), float("nan")
    t = _T975[len(a) - 2] if len(a) - 1 <= len(_T975) else 1.96
    half = t * float(a.std(ddof=1)) / math.sqrt(len(a))
    return m, m - half, m + half


def pct_change(values: Sequence[float], base: Sequence[float]) -> list[float]:
    """Per-seed relative change of `values` over `base`, in percent (paired by seed)."""
    return [100.0 * (x - b) / b for x, b in zip(values, base)]


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties get their average rank."""
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(1, len(x) + 1)
    for v in np.unique(x):
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on average ranks); NaN if a side is constant."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall tau-b over all pairs; NaN if a side is constant."""
    a, b = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(a), 1)
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return float((sx * sy).sum() / denom) if denom > 0 else float("nan")
