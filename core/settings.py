"""The project root, and the one way a plain dict (YAML, JSON, `--set`) becomes a dataclass.

Every typed config of the project (the pipeline profile, the simulator, the RL
hyper-parameters, each learner's parameters, the experiment plan) is built through
`from_dict`, so an unknown key fails the same way everywhere: a typo in a profile never
passes silently.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from pathlib import Path
from typing import Any, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The repository root (sql/, configs/ and dags/ are found from here)."""

T = TypeVar("T")

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""A name that may reach SQL or a path (database, learner, profile names)."""

def check_identifier(value: str, what: str) -> str:
    """`value` if it is a plain identifier (letters, digits, `_`), else ValueError."""
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"{what} must be a plain name (letters, digits, _), got {value!r}")
    return value


@functools.cache
def _adapter(annotation: Any) -> Any:
    """A strict pydantic validator of one field's type: no string passes for a number, no
    number for a flag, every element of a tuple and every value of a dict is checked."""
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(annotation, config=ConfigDict(strict=True))


def check_type(annotation: Any, value: Any, where: str, shown: str | None = None) -> Any:
    """`value` validated against the field type `annotation` (pydantic, strict; a YAML list
    for a tuple field becomes a tuple), else TypeError naming the field, the type and the
    value: YAML and `--set` give any type, and a string must never pass for a number."""
    from pydantic import ValidationError

    if isinstance(value, list) and typing.get_origin(annotation) is tuple:
        value = tuple(value)
    try:
        return _adapter(annotation).validate_python(value)
    except ValidationError as e:
        first = e.errors()[0]
        at = "".join(f"[{p}]" for p in first.get("loc", ()))
        raise TypeError(f"config {where} must be {shown or annotation}, got {value!r}"
                        + (f" ({at}: {first['msg']})" if at else "")) from None


def merge(obj: T, values: dict[str, Any], where: str = "") -> T:
    """A copy of dataclass instance `obj` with `values` merged in.

    Nested dataclass fields take nested dicts (merged recursively), tuple fields take lists;
    an unknown key raises KeyError naming its dotted path (`where` is the path prefix), a
    value of the wrong type for a scalar field TypeError (`check_type`)."""
    fields = {f.name: f for f in dataclasses.fields(obj)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(type(obj))
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise KeyError(f"unknown {type(obj).__name__} keys: "
                       f"{', '.join(where + k for k in unknown)}")
    kwargs: dict[str, Any] = {}
    for key, val in values.items():
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur) and isinstance(val, dict):
            kwargs[key] = merge(cur, val, f"{where}{key}.")
        else:
            kwargs[key] = check_type(hints[key], val, f"{where}{key}", str(fields[key].type))
    return dataclasses.replace(obj, **kwargs)  # type: ignore[type-var]


def from_dict(cls: type[T], values: dict[str, Any] | None = None, base: T | None = None,
              where: str = "") -> T:
    """`base` (or `cls()`'s defaults) with `values` merged in (see `merge`).

    The dataclass's own `__post_init__` checks run on the result."""
    return merge(cls() if base is None else base, dict(values or {}), where)
