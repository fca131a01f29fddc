"""Policies the simulator (and the evaluation) can serve.

A policy maps the request's states to normalised actions in [-1, 1]^10:
`act(user_state [B, USER_STATE_DIM], pair_state [B, N, PAIR_STATE_DIM])` returns
[B, 10] for fixed / user-level policies and [B, N, 10] for pair-level ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from mtf import schema as S
from mtf.fusion import default_action_norm


class Policy(Protocol):
    version: str
    level: str  # "fixed", "user" or "pair"

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray: ...


class FixedWeightsPolicy:
    """One global weight vector for everybody (the production default)."""

    level = "fixed"

    def __init__(self, action_norm: np.ndarray | None = None, version: str = "fixed-v0"):
        a = default_action_norm() if action_norm is None else np.asarray(action_norm)
        assert a.shape == (S.ACTION_DIM,), a.shape
        self.action_norm = np.clip(a.astype(np.float32), -1.0, 1.0)
        self.version = version

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        b = np.asarray(pair_state).shape[0]
        return np.broadcast_to(self.action_norm, (b, S.ACTION_DIM)).copy()


def _sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class TorchScriptPolicy:
    """An exported actor (TorchScript); pair level: [M, D] -> [M, 10]; user: [B, Du] -> [B, 10]."""

    def __init__(self, path: str | Path, level: str, version: str,
                 expected_sha256: str | None = None, chunk: int = 65536):
        if level not in ("pair", "user"):
            raise ValueError(f"level must be pair or user, got {level!r}")
        self.path, self.level, self.version, self.chunk = str(path), level, version, chunk
        if expected_sha256 is not None:
            got = _sha256(self.path)
            if got != expected_sha256:
                raise ValueError(f"checksum mismatch for {self.path}: {got} != {expected_sha256}")
        self._module = None

    @property
    def module(self):
        if self._module is None:
            import torch

            self._module = torch.jit.load(self.path, map_location="cpu").eval()
        return self._module

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        import torch

        if self.level == "user":
            x = np.asarray(user_state, np.float32)
            lead = x.shape[:-1]
            flat = x.reshape(-1, x.shape[-1])
        else:
            x = np.asarray(pair_state, np.float32)
            lead = x.shape[:-1]
            flat = x.reshape(-1, x.shape[-1])
        out = np.empty((flat.shape[0], S.ACTION_DIM), np.float32)
        with torch.inference_mode():
            for i in range(0, flat.shape[0], self.chunk):
                out[i:i + self.chunk] = self.module(
                    torch.from_numpy(np.ascontiguousarray(flat[i:i + self.chunk]))).numpy()
        return out.reshape(*lead, S.ACTION_DIM)


class CallablePolicy:
    """Wrap a function (tests, baselines): fn(user_state, pair_state) -> actions."""

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], np.ndarray], level: str,
                 version: str):
        self.fn, self.level, self.version = fn, level, version

    def act(self, user_state: np.ndarray, pair_state: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(user_state, pair_state), dtype=np.float32)
