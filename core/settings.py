"""The project root, and the one way a plain dict (YAML, JSON, `--set`) becomes a dataclass.

Every typed config of the project (the pipeline profile, the simulator, the RL
hyper-parameters, each learner's parameters, the experiment plan) is built through
`from_dict`, so an unknown key fails the same way everywhere: a typo in a profile never
passes silently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (sql/, configs/ and dags/ are found from here)."""

T = TypeVar("T")


def merge(obj: T, values: dict[str, Any], where: str = "") -> T:
    """A copy of dataclass instance `obj` with `values` merged in.

    Nested dataclass fields take nested dicts (merged recursively), tuple fields take lists;
    an unknown key raises KeyError naming its dotted path (`where` is the path prefix)."""
    names = {f.name for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise KeyError(f"unknown {type(obj).__name__} keys: "
                       f"{', '.join(where + k for k in unknown)}")
    kwargs: dict[str, Any] = {}
    for key, val in values.items():
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur) and isinstance(val, dict):
            kwargs[key] = merge(cur, val, f"{where}{key}.")
        elif isinstance(cur, tuple) and isinstance(val, list):
            kwargs[key] = tuple(val)
        else:
            kwargs[key] = val
    return dataclasses.replace(obj, **kwargs)  # type: ignore[type-var]


def from_dict(cls: type[T], values: dict[str, Any] | None = None, base: T | None = None,
              where: str = "") -> T:
    """`base` (or `cls()`'s defaults) with `values` merged in (see `merge`).

    The dataclass's own `__post_init__` checks run on the result."""
    return merge(cls() if base is None else base, dict(values or {}), where)
