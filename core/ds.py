"""Day partitions (`ds`): one validation, used by every job, table read and CLI argument."""

from __future__ import annotations

import datetime as dt
import re

_DS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate_ds(ds: str) -> str:
    """Accept only a real calendar day written YYYY-MM-DD (it ends up in SQL predicates)."""
    if not isinstance(ds, str) or not _DS_RE.match(ds):
        raise ValueError(f"--ds must be YYYY-MM-DD, got {ds!r}")
    try:
        dt.date.fromisoformat(ds)
    except ValueError as e:
        raise ValueError(f"--ds must be a real day YYYY-MM-DD, got {ds!r} ({e})") from None
    return ds


def window_days(ds: str, days: int) -> list[str]:
    """The `days` days ending at `ds` (inclusive), oldest first."""
    end = dt.date.fromisoformat(validate_ds(ds))
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]


def day_range(start: str, n: int) -> list[str]:
    """`n` consecutive days starting at `start`."""
    d0 = dt.date.fromisoformat(validate_ds(start))
    return [(d0 + dt.timedelta(days=i)).isoformat() for i in range(n)]
