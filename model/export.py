"""Export the actor to TorchScript with a checksum; load with verification; parity check."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import torch


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export_actor(actor: torch.nn.Module, path: str | Path) -> str:
    """torch.jit.script the actor (eval mode, on CPU), save it, return the file's sha256."""
    module = copy.deepcopy(actor).cpu().eval()
    scripted = torch.jit.script(module)
    torch.jit.save(scripted, str(path))
    return file_sha256(path)


def load_actor(path: str | Path, expected_sha256: str) -> torch.jit.ScriptModule:
    got = file_sha256(path)
    if got != expected_sha256:
        raise ValueError(f"checksum mismatch for {path}: {got} != {expected_sha256}")
    return torch.jit.load(str(path), map_location="cpu").eval()


@torch.no_grad()
def check_parity(actor: torch.nn.Module, exported: torch.nn.Module, example: torch.Tensor
                 ) -> float:
    """Max |eager - exported| on `example`."""
    eager = copy.deepcopy(actor).cpu().eval()
    return float((eager(example) - exported(example)).abs().max())
