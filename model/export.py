"""Export the actor to TorchScript or ONNX with a checksum; load with verification; parity.

The serving side (core.policy.TorchScriptPolicy, and a production ranker) loads the file
with `torch.jit.load`, so we export with `torch.jit.script` (not trace: no example-shape
specialisation, the leading dims stay free). torch 2.x marks TorchScript as deprecated in
favour of torch.export; the warnings are silenced here on purpose, the format is what the
consumers read today.

ONNX is the runtime-neutral alternative (onnxruntime, a C++ or JVM ranker): `export_onnx`
writes the actor with torch's exporter (torch.export based, needs onnxscript) with a
dynamic batch dimension, and `onnx_parity` runs the file in onnxruntime against the eager
actor, so a file whose graph was specialised to the example's shape, or lost an op, fails.
"""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from core.checksum import file_sha256

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


class _Method(torch.nn.Module):
    """`module.<method>` as a module's forward, so that the ONNX exporter can take it."""

    def __init__(self, module: torch.nn.Module, method: str):
        super().__init__()
        self.module = module
        self.method = method

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.method)(state)


def export_onnx(actor: torch.nn.Module, path: str | Path, method: str = "forward",
                example_rows: int = 7) -> str:
    """Export `actor.<method>` (state [N, D] -> action [N, A], N dynamic) to ONNX at `path`
    atomically (temporary file + rename); return the file's sha256.

    The graph has one input "state" and one output "action"; `method` lets a
    FactorizedPairActor export its request-level `forward_request`. The example batch only
    drives the trace (its size is not baked in: N is a dynamic dimension).
    """
    path = Path(path)
    module = _Method(copy.deepcopy(actor).cpu().eval(), method).eval()
    state_dim = int(cast(int, actor.state_dim))
    example = torch.zeros(example_rows, state_dim)
    tmp = path.with_name(path.name + ".tmp")
    batch = torch.export.Dim("batch", min=1)
    # the exporter logs a warning per torchvision op it cannot register: noise, not ours
    registration_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration_log.level
    registration_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(module, (example,), dynamo=True,
                                        input_names=["state"], output_names=["action"],
                                        dynamic_shapes=({0: batch},), optimize=True,
                                        verbose=False)
    finally:
        registration_log.setLevel(level)
    assert program is not None, "torch.onnx.export returned no program"
    program.save(str(tmp), external_data=False)
    os.replace(tmp, path)
    return file_sha256(path)


def onnx_session(path: str | Path, expected_sha256: str | None = None,
                 threads: int = 1) -> Any:
    """An onnxruntime CPU session on the file (sha256 verified when given)."""
    import onnxruntime as ort

    if expected_sha256 is not None and file_sha256(path) != expected_sha256:
        raise ValueError(f"checksum mismatch for {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts,
                                providers=["CPUExecutionProvider"])


@torch.no_grad()
def onnx_parity(actor: torch.nn.Module, path: str | Path, batch_sizes: tuple[int, ...] = (1, 5, 64),
                method: str = "forward", seed: int = 0, atol: float = 1e-5) -> float:
    """Max |eager - onnxruntime| over random states of each batch size (one user's rows for
    `forward_request`: the user block of row 0 is copied to all rows). NaN propagates, as in
    `check_parity`; exceeding `atol` is logged, the caller decides."""
    eager = copy.deepcopy(actor).cpu().eval()
    fn = getattr(eager, method)
    sess = onnx_session(path)
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n in batch_sizes:
        x = torch.randn(n, int(cast(int, actor.state_dim)), generator=gen)
        if method == "forward_request":
            x[:, :eager.user_dim] = x[:1, :eager.user_dim]
        want = fn(x).numpy()
        (got,) = sess.run(["action"], {"state": x.numpy()})
        if got.shape != want.shape:
            raise ValueError(f"eager / ONNX output shapes differ: {want.shape} != {got.shape}")
        diff = float(np.abs(got - want).max()) if want.size else 0.0
        worst = diff if np.isnan(diff) or np.isnan(worst) else max(worst, diff)
    if not worst <= atol:
        log.warning("ONNX actor differs from eager by %s (> atol %s)", worst, atol)
    return worst
