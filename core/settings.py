"""The project root, and the one way a plain dict (YAML, JSON, `--set`) becomes a dataclass.

Every typed config of the project (the pipeline profile, the simulator, the RL
hyper-parameters, each learner's parameters, the experiment plan) is built through
`from_dict`, so an unknown key fails the same way everywhere: a typo in a profile never
passes silently.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (sql/, configs/ and dags/ are found from here)."""

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""A name that may reach SQL or a path (database, learner, profile names)."""

_SCALARS: dict[str, tuple[type, ...]] = {"float": (float, int), "int": (int,), "bool": (bool,),
                                         "str": (str,)}


def check_identifier(value: str, what: str) -> str:
    """`value` if it is a plain identifier (letters, digits, `_`), else ValueError."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"{what} must be a plain name (letters, digits, _), got {value!r}")
    return value


def check_type(annotation: object, value: Any, where: str) -> None:
    """TypeError unless `value` fits a scalar annotation (`float`, `int | None`, ...): YAML
    and `--set` give any type, and a string must never pass for a number. Annotations that
    are not plain scalars (tuples, dicts, nested configs) are left to the dataclass."""
    parts = [p.strip() for p in str(annotation).split("|")]
    scalars = [p for p in parts if p != "None"]
    if not scalars or any(p not in _SCALARS for p in scalars):
        return
    if value is None:
        ok = "None" in parts
    else:
        kinds = tuple(k for p in scalars for k in _SCALARS[p])
        ok = isinstance(value, kinds) and (bool in kinds or not isinstance(value, bool))
    if not ok:
        raise TypeError(f"config {where} must be {annotation}, got {value!r}")


def merge(obj: T, values: dict[str, Any], where: str = "") -> T:
    """A copy of dataclass instance `obj` with `values` merged in.

    Nested dataclass fields take nested dicts (merged recursively), tuple fields take lists;
    an unknown key raises KeyError naming its dotted path (`where` is the path prefix), a
    value of the wrong type for a scalar field TypeError (`check_type`)."""
    fields = {f.name: f for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(fields))
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
            check_type(fields[key].type, val, f"{where}{key}")
            kwargs[key] = val
    return dataclasses.replace(obj, **kwargs)  # type: ignore[type-var]


def from_dict(cls: type[T], values: dict[str, Any] | None = None, base: T | None = None,
              where: str = "") -> T:
    """`base` (or `cls()`'s defaults) with `values` merged in (see `merge`).

    The dataclass's own `__post_init__` checks run on the result."""
    return merge(cls() if base is None else base, dict(values or {}), where)
