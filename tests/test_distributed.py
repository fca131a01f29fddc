"""Data-parallel training: `torchrun --nproc_per_node 2 -m model.train` (gloo, CPU) on a
tiny snapshot finishes, writes one artifact, and both replicas end with equal parameters,
although their shards (row groups index % 2) have different sizes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _snapshot_data import write_tiny_snapshot  # tests/ is on sys.path

from model import distributed as dd
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from mtf.config import PROJECT_ROOT

DS = "2031-02-02"
STEPS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_ranks_one_artifact_equal_replicas(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and shutil.which("torchrun") is None:
        pytest.skip("torchrun is not installed next to this interpreter")
    # 5 row groups of 32 lists: rank 0 reads 3 (96 lists), rank 1 reads 2 (64 lists)
    snapshot_json = write_tiny_snapshot(tmp_path / "snap", n_files=1, rows_per_file=160)
    warehouse = tmp_path / "wh"
    env = {**os.environ, "MTF_WAREHOUSE": str(warehouse), "MTF_PROFILE": "test",
           "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "model.train", "--ds", DS,
           "--snapshot", str(snapshot_json), "--no-progress",
           "--set", f"rl.steps={STEPS}", "--set", "rl.checkpoint_every=10",
           "--set", "rl.log_every=10"]
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    artifacts = warehouse / "_artifacts"
    assert sorted(p.name for p in artifacts.iterdir()) == [f"enhanced_rl-{DS}"]  # no .work/.tmp
    art = artifacts / f"enhanced_rl-{DS}"
    meta = json.loads((art / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] == STEPS
    # both replicas' parameter digests, gathered at the end: equal, and equal to the saved ones
    digests = meta["replica_param_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    ckpt = torch.load(art / "checkpoint.pt", map_location="cpu", weights_only=False)
    learner = EnhancedRL(EnhancedRLConfig.from_dict(ckpt["config"]["rl"]))
    learner.load_state_dict(ckpt["learner"])
    assert dd.param_digest(learner.actor, learner.critic) == digests[0]
    # uneven shards, same step count: 3 vs 2 row groups -> rank 1 went through more epochs
    pos0, pos1 = meta["rank_positions"]
    assert pos1["epoch"] > pos0["epoch"]
    rows = [json.loads(x) for x in (art / "train_metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30]
