"""The trainer can be trusted: seeded runs repeat exactly, a run killed mid-way resumes to the
same result as an uninterrupted one, a stale checkpoint is not resumed, warm start works,
and the ensemble diagnostics reach train_metrics.jsonl. No Spark: `--snapshot` files."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _snapshot_data import write_tiny_snapshot  # tests/ is on sys.path

from core.settings import PROJECT_ROOT
from jobs.train import STATE_FILE, main, train, work_dir
from model.enhanced_rl import EnhancedRL
from pipeline.config import PipelineConfig, load_config
from store.snapshot import Snapshot

DS = "2031-02-01"
STEPS = 120
SETTINGS = [f"rl.steps={STEPS}", "rl.checkpoint_every=20", "rl.log_every=5"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for every run here, the module-scoped `reference` included (an
    autouse fixture of its scope is set up before it): the subprocess trainers run with
    OMP_NUM_THREADS=1, and a GEMM split over another thread count sums in another order,
    which broke the exact (atol 0) comparisons by an ulp now and then."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def snapshot_json(tmp_path_factory) -> Path:
    return write_tiny_snapshot(tmp_path_factory.mktemp("snap"), candidates=10)


def config(*extra: str) -> PipelineConfig:
    return load_config("test", [*SETTINGS, *extra])


@pytest.fixture(scope="module")
def reference(snapshot_json, tmp_path_factory) -> Path:
    """An uninterrupted in-process run: its artifact folder."""
    out = tmp_path_factory.mktemp("ref") / "enhanced_rl-ref"
    snap = Snapshot.load(snapshot_json)
    train(config(), DS, snap, {snap.table: snap.version}, out, progress=False)
    return out


def rows(artifact: Path) -> list[dict]:
    return [json.loads(line) for line in (artifact / "train_metrics.jsonl").read_text()
            .splitlines()]


def learner_state(artifact: Path) -> dict:
    return torch.load(artifact / "checkpoint.pt", map_location="cpu", weights_only=True)


def assert_same_training(a: Path, b: Path, atol: float = 1e-6) -> None:
    """Same metric rows (but wall-clock rates) and the same networks and optimizers."""
    ra, rb = rows(a), rows(b)
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            if k != "charts/steps_per_sec":
                assert math.isclose(x[k], y[k], rel_tol=0, abs_tol=atol), (x["step"], k)
    sa, sb = learner_state(a)["learner"], learner_state(b)["learner"]
    assert sa["step"] == sb["step"] == STEPS
    for net in ("actor", "critic", "actor_target", "critic_target"):
        for k, v in sa[net].items():
            torch.testing.assert_close(v, sb[net][k], atol=atol, rtol=0, msg=f"{net}.{k}")
    for opt in ("actor_opt", "critic_opt"):
        for i, st in sa[opt]["state"].items():
            for k, v in st.items():
                torch.testing.assert_close(v, sb[opt]["state"][i][k], atol=atol, rtol=0)


def test_reference_run_logs_each_step_once_with_ensemble_diagnostics(reference):
    r = rows(reference)
    assert [x["step"] for x in r] == list(range(5, STEPS + 1, 5))
    keys = {f"q/set{i}_{what}_{stat}" for i in (0, 1) for what in ("pi", "logged")
            for stat in ("mean", "std")}
    assert all(keys <= set(x) for x in r)
    assert all(math.isfinite(x[k]) for x in r for k in keys)
    assert all(x[k] >= 0 for x in r for k in keys if k.endswith("_std"))
    meta = json.loads((reference / "meta.json").read_text())
    assert meta["resume_count"] == 0 and meta["world_size"] == 1 and meta["steps"] == STEPS
    assert meta["warm_start"] is None and meta["seed"] == 0 and meta["config"]["rl"]["steps"]
    assert not work_dir(reference).exists()  # removed on success
    assert not reference.with_name(reference.name + ".tmp").exists()


def test_seeded_rerun_is_identical_and_ignores_a_foreign_checkpoint(reference, snapshot_json,
                                                                    tmp_path):
    out = tmp_path / "enhanced_rl-again"
    snap = Snapshot.load(snapshot_json)
    # a checkpoint of another config (other seed) sits in the work folder: not resumed
    train(config("rl.seed=1", "rl.steps=20", "rl.checkpoint_every=10"), DS, snap, {}, out,
          progress=False)
    other = rows(out)
    work_dir(out).mkdir()
    torch.save({"fingerprint": "someone else's"}, work_dir(out) / STATE_FILE)
    train(config(), DS, snap, {snap.table: snap.version}, out, progress=False)
    assert_same_training(reference, out, atol=0.0)
    assert json.loads((out / "meta.json").read_text())["resume_count"] == 0
    assert other[-1]["losses/critic"] != rows(out)[3]["losses/critic"]  # seed matters


def _args(snapshot_json: Path, *extra: str) -> list[str]:
    return ["--ds", DS, "--snapshot", str(snapshot_json), "--no-progress", *extra,
            *[a for s in SETTINGS for a in ("--set", s)]]


def _run_trainer(warehouse: Path, snapshot_json: Path) -> subprocess.Popen:
    env = {**os.environ, "MTF_WAREHOUSE": str(warehouse), "MTF_PROFILE": "test",
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "jobs.train", *_args(snapshot_json)]
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_killed_trainer_resumes_to_the_uninterrupted_result(reference, snapshot_json,
                                                            tmp_path, monkeypatch, caplog):
    """SIGKILL a trainer process after its first checkpoint; the rerun (in-process, same
    arguments, saves a second interpreter start) resumes and ends where the reference did."""
    warehouse = tmp_path / "wh"
    artifact = warehouse / "_artifacts" / f"enhanced_rl_selection-{DS}"
    state = work_dir(artifact) / STATE_FILE
    proc = _run_trainer(warehouse, snapshot_json)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, out
    assert state.exists() and not artifact.exists(), "killed before its first checkpoint"
    killed_at = torch.load(state, weights_only=True)["learner"]["step"]
    assert 20 <= killed_at < STEPS

    monkeypatch.setenv("MTF_WAREHOUSE", str(warehouse))
    caplog.set_level(logging.INFO, logger="jobs.train")
    assert main(_args(snapshot_json, "--profile", "test")) == 0
    assert f"at step {killed_at}" in caplog.text and "resuming" in caplog.text
    meta = json.loads((artifact / "meta.json").read_text())
    assert meta["resume_count"] == 1 and meta["resumed_at_steps"] == [killed_at]
    assert not work_dir(artifact).exists()
    # each logged step exactly once, and the same training as the uninterrupted run
    assert_same_training(reference, artifact, atol=0.0)
    # MLflow: the killed attempt logged nothing, the resumed one one run and one version
    from store.tracking import Tracker

    cfg = load_config("test")
    tracker = Tracker.from_config(cfg.tracking, cfg.storage)
    assert tracker.uri == f"sqlite:///{warehouse}/_mlflow/mlflow.db"
    (run,) = tracker.client.search_runs([tracker.experiment_id()])
    assert run.data.tags["resume_count"] == "1" and run.data.params["rl.steps"] == str(STEPS)
    (version,) = tracker.versions_of(meta["model_version"])
    assert version.run_id == run.info.run_id
    assert version.tags["actor_sha256"] == meta["actor_sha256"]


def test_warm_start_takes_the_previous_networks(reference, snapshot_json, tmp_path,
                                                monkeypatch):
    monkeypatch.setenv("MTF_WAREHOUSE", str(tmp_path / "wh"))
    # learning rates 0: the actor stays exactly the warm-start one; targets keep tracking it
    args = _args(snapshot_json, "--warm-start", str(reference), "--profile", "test")
    for s in ["rl.steps=10", "rl.actor_lr=0", "rl.critic_lr=0"]:
        args += ["--set", s]
    assert main(args) == 0
    artifact = tmp_path / "wh" / "_artifacts" / f"enhanced_rl_selection-{DS}"
    meta = json.loads((artifact / "meta.json").read_text())
    ref_ckpt = reference / "checkpoint.pt"
    assert meta["warm_start"]["path"] == str(ref_ckpt.resolve())
    assert meta["warm_start"]["model_version"] == "enhanced_rl_selection-" + DS
    assert meta["config"]["rl"]["warm_start"] == str(reference)
    got, ref = learner_state(artifact)["learner"], learner_state(reference)["learner"]
    for net in ("actor", "critic"):
        for k, v in ref[net].items():
            assert torch.equal(v, got[net][k]), (net, k)
    fresh = EnhancedRL(config().rl).actor.state_dict()
    assert any(not torch.equal(v, got["actor"][k]) for k, v in fresh.items())


def test_batches_carry_the_candidates_the_snapshot_holds(tmp_path, monkeypatch):
    """The trainer hands the learner the loader's cand_* and next_cand_* tensors as they are
    (the learner decides whether to use them) and records K in meta.json."""
    snap = Snapshot.load(write_tiny_snapshot(tmp_path / "snap", candidates=7,
                                             next_candidates=True))
    seen: list[dict[str, tuple[int, ...]]] = []
    update = EnhancedRL.update

    def spy(self, batch, diagnostics=True):
        seen.append({k: tuple(v.shape) for k, v in batch.items()})
        return update(self, batch, diagnostics)

    monkeypatch.setattr(EnhancedRL, "update", spy)
    out = tmp_path / "enhanced_rl-cand"
    train(config("rl.steps=3"), DS, snap, {snap.table: snap.version}, out, progress=False)
    b, d, a = seen[0]["pair_state"][0], seen[0]["pair_state"][2], seen[0]["action"][2]
    assert len(seen) == 3
    assert {k: seen[0][k] for k in ("cand_state", "cand_center", "cand_mask", "next_cand_state",
                                    "next_cand_center", "next_cand_mask")} == {
        "cand_state": (b, 7, d), "cand_center": (b, 7, a), "cand_mask": (b, 7),
        "next_cand_state": (b, 7, d), "next_cand_center": (b, 7, a), "next_cand_mask": (b, 7)}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["candidate_slots"] == 7 and "next_cand_mask" in meta["columns_read"]


def test_selection_objective_refuses_a_snapshot_without_candidates(tmp_path):
    """actor_objective = 'selection' (the test profile's) on files from before the candidates:
    a clear error naming the missing column, before any step; the paper's objective trains."""
    snap = Snapshot.load(write_tiny_snapshot(tmp_path / "snap"))
    with pytest.raises(ValueError, match="cand_state"):
        train(config("rl.steps=2"), DS, snap, {snap.table: snap.version},
              tmp_path / "enhanced_rl_selection-x", progress=False)
    paper = config("rl.steps=2", "algo=enhanced_rl", "rl.actor_objective=exposed")
    train(paper, DS, snap, {snap.table: snap.version}, tmp_path / "enhanced_rl-x",
          progress=False)
    assert (tmp_path / "enhanced_rl-x" / "meta.json").exists()
