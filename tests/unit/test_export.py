"""Exported actors (TorchScript and ONNX) compute what the eager actor computes, at any batch
size, for the pair-level, factorized and user-level actors; broken or foreign files fail."""

from __future__ import annotations

import onnx
import pytest
import torch

from model.export import (
    check_parity,
    export_actor,
    export_onnx,
    load_actor,
    onnx_parity,
    onnx_session,
)
from model.networks import FactorizedPairActor, PairActor, UserActor

ACTORS = {
    "pair": lambda: PairActor(hidden=(32, 16), user_tower_hidden=8),
    "factorized": lambda: FactorizedPairActor(user_hidden=(16,), pair_hidden=8),
    "user": lambda: UserActor(hidden=(16,)),
}


@pytest.mark.parametrize("kind", sorted(ACTORS))
def test_torchscript_and_onnx_match_eager(kind, tmp_path):
    torch.manual_seed(0)
    actor = ACTORS[kind]()
    x = torch.randn(9, actor.state_dim) * 3
    sha = export_actor(actor, tmp_path / "actor.pt")
    assert check_parity(actor, load_actor(tmp_path / "actor.pt", sha), x) <= 1e-5
    sha_onnx = export_onnx(actor, tmp_path / "actor.onnx")
    assert len(sha_onnx) == 64
    # the batch dimension is symbolic, not the example's size; sizes 1 .. 300 all run
    dim0 = onnx.load(str(tmp_path / "actor.onnx")).graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.HasField("dim_value")
    assert onnx_parity(actor, tmp_path / "actor.onnx", batch_sizes=(1, 4, 300)) <= 1e-5
    # a different actor (other weights) is caught by both checks
    torch.manual_seed(1)
    other = ACTORS[kind]()
    assert onnx_parity(other, tmp_path / "actor.onnx") > 1e-3
    assert check_parity(other, load_actor(tmp_path / "actor.pt", sha), x) > 1e-3


@pytest.mark.parametrize("kind", ["pair", "factorized"])
def test_request_method_exports(kind, tmp_path):
    torch.manual_seed(2)
    actor = ACTORS[kind]()
    x = torch.randn(50, actor.state_dim)
    x[:, :actor.user_dim] = x[:1, :actor.user_dim]  # one request: one user block
    sha = export_actor(actor, tmp_path / "actor.pt")
    scripted = load_actor(tmp_path / "actor.pt", sha)
    with torch.no_grad():
        want = actor.forward_request(x)
        torch.testing.assert_close(scripted.forward_request(x), want, atol=1e-6, rtol=0)
    export_onnx(actor, tmp_path / "req.onnx", method="forward_request")
    assert onnx_parity(actor, tmp_path / "req.onnx", batch_sizes=(1, 500),
                       method="forward_request") <= 1e-5


def test_onnx_session_verifies_checksum(tmp_path):
    actor = UserActor(hidden=(8,))
    sha = export_onnx(actor, tmp_path / "u.onnx")
    (out,) = onnx_session(tmp_path / "u.onnx", sha).run(
        ["action"], {"state": torch.zeros(2, actor.state_dim).numpy()})
    assert out.shape == (2, actor.action_dim)
    with pytest.raises(ValueError, match="checksum"):
        onnx_session(tmp_path / "u.onnx", "0" * 64)
