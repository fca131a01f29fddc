"""Export the actor to TorchScript with a checksum; load with verification; parity check.

The serving side (sim.policies.TorchScriptPolicy, and a production ranker) loads the file
with `torch.jit.load`, so we export with `torch.jit.script` (not trace: no example-shape
specialisation, the leading dims stay free). torch 2.x marks TorchScript as deprecated in
favour of torch.export; the warnings are silenced here on purpose, the format is what the
consumers read today.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from mtf.checksum import file_sha256

log = logging.getLogger(__name__)


@contextmanager
def _no_torchscript_deprecation() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        yield




def export_actor(actor: torch.nn.Module, path: str | Path) -> str:
    """`torch.jit.script` a copy of the actor (eval mode, CPU), save it to `path` atomically
    (temporary file + rename), return the file's sha256."""
    path = Path(path)
    module = copy.deepcopy(actor).cpu().eval()
    tmp = path.with_name(path.name + ".tmp")
    with _no_torchscript_deprecation():
        scripted = torch.jit.script(module)
        torch.jit.save(scripted, str(tmp))
    os.replace(tmp, path)
    return file_sha256(path)


def load_actor(path: str | Path, expected_sha256: str) -> torch.jit.ScriptModule:
    """Verify the file's sha256 (ValueError on mismatch), then `torch.jit.load` it (CPU, eval)."""
    got = file_sha256(path)
    if got != expected_sha256:
        raise ValueError(f"checksum mismatch for {path}: {got} != {expected_sha256}")
    with _no_torchscript_deprecation():
        module = torch.jit.load(str(path), map_location="cpu")
    return module.eval()


@torch.no_grad()
def check_parity(actor: torch.nn.Module, scripted: torch.nn.Module, example: torch.Tensor,
                 atol: float = 1e-5) -> float:
    """Max |eager(example) - scripted(example)| (both on CPU, eval mode). NaN propagates, so
    a broken export cannot pass a `<= atol` gate; exceeding `atol` is logged, the caller
    (the publication gate) decides."""
    eager = copy.deepcopy(actor).cpu().eval()
    x = example.detach().cpu().float()
    a, b = eager(x), scripted(x)
    if a.shape != b.shape:
        raise ValueError(f"eager / exported output shapes differ: {a.shape} != {b.shape}")
    diff = (a - b).abs()
    if diff.numel() == 0:
        worst = 0.0
    elif bool(torch.isnan(diff).any()):
        worst = float("nan")
    else:
        worst = float(diff.max())
    if not worst <= atol:
        log.warning("exported actor differs from eager by %s (> atol %s)", worst, atol)
    return worst
