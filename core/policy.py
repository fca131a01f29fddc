"""Policies the simulator (and the evaluation) can serve.

A policy maps one batch of requests to normalised actions in [-1, 1]^10 (the box centres
`mu_bp`; the simulator adds the exploration noise):

    act(user_state [B, USER_STATE_DIM], pair_state [B, N, PAIR_STATE_DIM])
        -> [B, 10]     level "fixed" / "user": one action per request
        -> [B, N, 10]  level "pair": one action per (user, item) candidate pair
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core import schema as S
from core.checksum import file_sha256
from core.fusion import default_action_norm

LEVELS = ("fixed", "user", "pair")


@runtime_checkable
class Policy(Protocol):
    version: str
    """Logged as raw_requests.policy_version."""
    level: str
    """One of LEVELS: "fixed", "user" or "pair"."""

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray: ...


def _check_level(level: str, allowed: tuple[str, ...] = LEVELS) -> str:
    if level not in allowed:
        raise ValueError(f"level must be one of {allowed}, got {level!r}")
    return level


class FixedWeightsPolicy:
    """One global weight vector for everybody (the production default: power 1, bias 0.1)."""

    level = "fixed"

    def __init__(self, action_norm: np.ndarray | None = None, version: str = "fixed-v0"):
        a = default_action_norm() if action_norm is None else np.asarray(action_norm)
        if a.shape != (S.ACTION_DIM,):
            raise ValueError(f"action_norm must have shape ({S.ACTION_DIM},), got {a.shape}")
        self.action_norm = np.clip(a.astype(np.float32), -1.0, 1.0)
        self.version = version

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        b = np.asarray(user_state).shape[0]
        return np.broadcast_to(self.action_norm, (b, S.ACTION_DIM)).copy()


class TorchScriptPolicy:
    """An exported actor (TorchScript), loaded lazily (torch is imported on first use).

    level "pair": module([M, PAIR_STATE_DIM]) -> [M, 10] on the flattened candidates,
    in chunks of `chunk` rows; level "user": module([B, USER_STATE_DIM]) -> [B, 10].
    The file's sha256 is checked at construction when `expected_sha256` is given.
    Runs under torch.inference_mode and leaves torch's thread settings alone.
    """

    def __init__(self, path: str | Path, level: str, version: str,
                 expected_sha256: str | None = None, chunk: int = 65536):
        self.path, self.version, self.chunk = str(path), version, int(chunk)
        self.level = _check_level(level, ("user", "pair"))
        if expected_sha256 is not None:
            got = file_sha256(self.path)
            if got != expected_sha256:
                raise ValueError(f"sha256 checksum mismatch for {self.path}: "
                                 f"{got} != {expected_sha256}")
        self._module: Any = None

    @property
    def module(self) -> Any:
        if self._module is None:
            import torch

            self._module = torch.jit.load(self.path, map_location="cpu").eval()
        return self._module

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        import torch

        x = np.asarray(user_state if self.level == "user" else pair_state, np.float32)
        lead = x.shape[:-1]
        flat = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))  # [M, D]
        out = np.empty((flat.shape[0], S.ACTION_DIM), np.float32)
        module = self.module
        with torch.inference_mode():
            for i in range(0, flat.shape[0], self.chunk):
                y = module(torch.from_numpy(flat[i:i + self.chunk]))
                out[i:i + self.chunk] = y.detach().cpu().numpy().reshape(-1, S.ACTION_DIM)
        return out.reshape(*lead, S.ACTION_DIM)


class CallablePolicy:
    """Wrap a function fn(user_state, pair_state) -> actions (tests, search baselines)."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], level: str,
                 version: str):
        self.fn, self.version = fn, version
        self.level = _check_level(level)

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(user_state, pair_state), dtype=np.float32)
