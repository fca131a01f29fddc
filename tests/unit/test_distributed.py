"""Data-parallel training under `torchrun --nproc_per_node 2 -m jobs.train` (gloo, CPU) on a
tiny snapshot: it finishes, writes one artifact, both replicas end with equal parameters
although their shards (row groups index % 2) have different sizes, and a job killed mid-way
(agent and both workers, SIGKILL) resumes on restart to exactly the uninterrupted result."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
from _snapshot_data import write_tiny_snapshot  # tests/ is on sys.path

from core.settings import PROJECT_ROOT
from jobs.train import STATE_FILE, work_dir
from model import distributed as dd
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL

DS = "2031-02-02"
STEPS = 30
SETTINGS = [f"rl.steps={STEPS}", "rl.checkpoint_every=5", "rl.log_every=10"]
TORCHRUN = Path(sys.executable).with_name("torchrun")

pytestmark = pytest.mark.skipif(not TORCHRUN.exists(),
                                reason="torchrun is not installed next to this interpreter")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(warehouse: Path, snapshot_json: Path) -> subprocess.Popen:
    env = {**os.environ, "MTF_WAREHOUSE": str(warehouse), "MTF_PROFILE": "test",
           "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "jobs.train", "--ds", DS,
           "--snapshot", str(snapshot_json), "--no-progress",
           *[a for s in SETTINGS for a in ("--set", s)]]
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-6000:]


def _artifact(warehouse: Path) -> Path:
    return warehouse / "_artifacts" / f"enhanced_rl_selection-{DS}"


def _rows(artifact: Path) -> list[dict]:
    return [json.loads(x) for x in (artifact / "train_metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def snapshot_json(tmp_path_factory) -> Path:
    # 5 row groups of 32 lists: rank 0 reads 3 (96 lists), rank 1 reads 2 (64 lists)
    return write_tiny_snapshot(tmp_path_factory.mktemp("snap"), n_files=1, rows_per_file=160,
                               candidates=10)


@pytest.fixture(scope="module")
def uninterrupted(snapshot_json, tmp_path_factory) -> Path:
    """The warehouse of one uninterrupted 2-rank run."""
    warehouse = tmp_path_factory.mktemp("wh")
    _finish(_torchrun(warehouse, snapshot_json))
    return warehouse


def test_torchrun_two_ranks_one_artifact_equal_replicas(uninterrupted):
    artifacts = uninterrupted / "_artifacts"
    # no .work / .tmp left
    assert sorted(p.name for p in artifacts.iterdir()) == [f"enhanced_rl_selection-{DS}"]
    art = _artifact(uninterrupted)
    meta = json.loads((art / "meta.json").read_text())
    assert meta["world_size"] == 2 and meta["steps"] == STEPS and meta["resume_count"] == 0
    # both replicas' parameter digests, gathered at the end: equal, and equal to the saved ones
    digests = meta["replica_param_sha256"]
    assert len(digests) == 2 and digests[0] == digests[1]
    ckpt = torch.load(art / "checkpoint.pt", map_location="cpu", weights_only=True)
    learner = EnhancedRL(EnhancedRLConfig.from_dict(ckpt["config"]["rl"]))
    learner.load_state_dict(ckpt["learner"])
    assert dd.param_digest(learner.actor, learner.critic) == digests[0]
    # uneven shards, same step count: 3 vs 2 row groups -> rank 1 went through more epochs
    pos0, pos1 = meta["rank_positions"]
    assert pos1["epoch"] > pos0["epoch"]
    assert [r["step"] for r in _rows(art)] == [10, 20, 30]


def _kill_job(agent: subprocess.Popen) -> int:
    """SIGKILL the torchrun agent and every process under it at once, as a lost node would
    (the agent starts its workers in sessions of their own, so killpg would miss them).
    Returns how many processes were killed."""
    procs = [psutil.Process(agent.pid)]
    procs += procs[0].children(recursive=True)
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    agent.communicate(timeout=30)
    psutil.wait_procs(procs, timeout=30)
    return len(procs)


def test_killed_torchrun_job_resumes_to_the_uninterrupted_result(uninterrupted, snapshot_json,
                                                                 tmp_path):
    warehouse = tmp_path / "wh"
    artifact = _artifact(warehouse)
    state = work_dir(artifact) / STATE_FILE
    proc = _torchrun(warehouse, snapshot_json)
    deadline = time.monotonic() + 240
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _kill_job(proc) >= 3  # the agent and its two workers
    assert proc.returncode == -signal.SIGKILL
    assert state.exists() and not artifact.exists(), "killed too early or too late"
    ckpt = torch.load(state, map_location="cpu", weights_only=True)
    killed_at = ckpt["learner"]["step"]
    assert 5 <= killed_at < STEPS and len(ckpt["ranks"]) == 2

    _finish(_torchrun(warehouse, snapshot_json))
    assert not work_dir(artifact).exists()
    meta = json.loads((artifact / "meta.json").read_text())
    ref_dir = _artifact(uninterrupted)
    ref = json.loads((ref_dir / "meta.json").read_text())
    assert meta["resume_count"] == 1 and meta["resumed_at_steps"] == [killed_at]
    assert meta["world_size"] == 2 and meta["steps"] == STEPS
    # exactly the uninterrupted run: replicas, data positions, metric rows, every tensor
    assert meta["replica_param_sha256"] == ref["replica_param_sha256"]
    assert meta["rank_positions"] == ref["rank_positions"]
    got, want = _rows(artifact), _rows(ref_dir)
    assert [r["step"] for r in got] == [r["step"] for r in want] == [10, 20, 30]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        assert all(g[k] == w[k] or (math.isnan(g[k]) and math.isnan(w[k]))
                   for k in g if k != "charts/steps_per_sec"), g["step"]
    sa = torch.load(artifact / "checkpoint.pt", map_location="cpu", weights_only=True)
    sb = torch.load(ref_dir / "checkpoint.pt", map_location="cpu", weights_only=True)
    for net in ("actor", "critic", "actor_target", "critic_target"):
        for k, v in sb["learner"][net].items():
            assert torch.equal(v, sa["learner"][net][k]), (net, k)
    for opt in ("actor_opt", "critic_opt"):
        for i, st in sb["learner"][opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, sa["learner"][opt]["state"][i][k]), (opt, i, k)
    assert (artifact / "actor.pt").exists()
    shutil.rmtree(warehouse)
