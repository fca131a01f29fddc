"""MLflow next to the Delta tables: a training run lands in the local SQLite store with its
params, per-step metrics and artifacts; its actor is registered once per model_version;
publish and rollback move the `champion` alias; tracking off logs nothing; a tracking
failure is a warning unless `tracking.strict`. No Spark: policy_registry's answer
(`current_policy`) is stubbed here, tests/spark/test_reliability.py checks it for real."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest
from _snapshot_data import write_tiny_snapshot  # tests/ is on sys.path

from core.artifact import Artifact
from core.settings import PROJECT_ROOT
from pipeline.config import load_config
from store.registry import FIXED_POLICY, PolicyRef
from store.tracking import CHAMPION, Tracker, flatten, metric_rows

DS = "2031-03-01"


def config(tmp: Path, *extra: str):
    """The test profile with its own local_dir: the default store is <tmp>/_mlflow."""
    return load_config("test", [f"storage.local_dir={tmp}", "rl.steps=6", "rl.log_every=2",
                                *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny training (6 steps) and its artifact folder, logged to nothing yet."""
    from jobs.train import train
    from store.snapshot import Snapshot

    tmp = tmp_path_factory.mktemp("tracked")
    snap = Snapshot.load(write_tiny_snapshot(tmp / "snap", candidates=10))
    cfg = config(tmp)
    out = Path(cfg.storage.artifacts_path()) / f"{cfg.algo}-{DS}"
    train(cfg, DS, snap, {snap.table: snap.version, "mtf.user_state": 4}, out, progress=False)
    return tmp, cfg, out


def tracker_of(cfg) -> Tracker:
    return Tracker.from_config(cfg.tracking, cfg.storage)


def fake_run(tracker: Tracker, tmp: Path, model_version: str, sha: str) -> tuple[str, str]:
    """A run with a small actor file, registered as `model_version`: (run_id, version)."""
    actor = tmp / f"{model_version}-{sha}.pt"
    actor.write_bytes(sha.encode())
    rec = tracker.log_training(run_name=model_version, params={"seed": 0}, tags={},
                               data_versions={}, metrics=[], final_metrics={}, actor=actor,
                               model_version=model_version, ds=DS, actor_sha256=sha)
    assert rec.version is not None
    return rec.run_id, rec.version


def test_config_default_store_env_override_and_server_artifacts(tmp_path, monkeypatch):
    monkeypatch.delenv("MTF_MLFLOW_URI", raising=False)
    cfg = config(tmp_path)
    t = cfg.tracking
    assert t.enabled and t.experiment == "mtf-rl" and t.registered_model == "mtf-fusion-policy"
    assert t.tracking_uri(cfg.storage) == f"sqlite:///{tmp_path}/_mlflow/mlflow.db"
    assert t.artifact_location(cfg.storage) == (tmp_path / "_mlflow" / "artifacts").as_uri()
    monkeypatch.setenv("MTF_MLFLOW_URI", "http://mlflow.internal:5000")
    assert t.tracking_uri(cfg.storage) == "http://mlflow.internal:5000"
    assert t.artifact_location(cfg.storage) is None  # the server decides
    with pytest.raises(Exception, match="tracking.registered_model"):
        config(tmp_path, "tracking.registered_model=''")
    assert "tracking" in cfg.to_dict()


def test_make_mlflow_serves_the_local_store_on_localhost(tmp_path, monkeypatch):
    from mtf.cli import mlflow_ui_command

    monkeypatch.delenv("MTF_MLFLOW_URI", raising=False)
    cmd = mlflow_ui_command(config(tmp_path), 5123)
    assert cmd is not None and cmd[1] == "server"
    opts = dict(zip(cmd[2::2], cmd[3::2]))
    assert opts == {"--backend-store-uri": f"sqlite:///{tmp_path}/_mlflow/mlflow.db",
                    "--default-artifact-root": (tmp_path / "_mlflow/artifacts").as_uri(),
                    "--host": "127.0.0.1", "--port": "5123", "--workers": "1"}
    monkeypatch.setenv("MTF_MLFLOW_URI", "https://mlflow.internal")
    assert mlflow_ui_command(config(tmp_path), 5123) is None  # the server has its own UI
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    phony = makefile.split(".PHONY:")[1].split("\n")[0].split()
    assert "mlflow" in phony and "\t$(PY) -m mtf.cli mlflow\n" in makefile


def test_flatten_and_metric_rows():
    assert flatten({"rl": {"steps": 6, "hidden": (32, 32)}, "algo": "x", "empty": {}}) == {
        "rl.steps": "6", "rl.hidden": "[32, 32]", "algo": "x", "empty": "{}"}
    rows = [{"step": 2, "losses/actor": 0.5, "charts/epoch": 0, "note": "x", "flag": True}]
    assert metric_rows(rows) == [("losses/actor", 0.5, 2), ("charts/epoch", 0.0, 2)]


def test_training_run_lands_in_mlflow_and_registers_once(trained, caplog):
    from jobs.train import track_training

    tmp, cfg, out = trained
    art = Artifact(out)
    before = art.meta.read_text(), art.train_metrics.read_text()
    rec = track_training(cfg, DS, out)
    assert rec is not None and rec.version == "1" and not rec.reused
    assert (art.meta.read_text(), art.train_metrics.read_text()) == before  # outputs unchanged

    meta = json.loads(art.meta.read_text())
    rows = [json.loads(line) for line in art.train_metrics.read_text().splitlines()]
    client = tracker_of(cfg).client
    run = client.get_run(rec.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == meta["model_version"]
    p = run.data.params
    assert p["rl.steps"] == "6" and p["algo"] == cfg.algo and p["seed"] == str(meta["seed"])
    assert p["git_sha"] == meta["git_sha"] and p["ds"] == DS
    assert p["model_version"] == meta["model_version"]
    assert p["data_version.mtf.user_state"] == "4"
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == set(meta["data_versions"])
    assert run.data.tags["actor_sha256"] == meta["actor_sha256"]
    # every logged row, at its step
    history = client.get_metric_history(rec.run_id, "losses/critic")
    assert [(m.step, m.value) for m in history] == [
        (r["step"], pytest.approx(r["losses/critic"])) for r in rows]
    assert [m.step for m in history] == [2, 4, 6]
    assert math.isclose(run.data.metrics["final/steps"], 6)
    # the actor and meta.json as artifacts, byte for byte
    listed = {a.path for a in client.list_artifacts(rec.run_id)}
    assert {"actor", "meta.json", "snapshot.json"} <= listed
    local = Path(client.download_artifacts(rec.run_id, "actor/actor.pt", str(tmp / "dl")))
    assert local.read_bytes() == art.actor.read_bytes()
    # the registered version: source = the run's actor, tagged with the project's version
    tracker = tracker_of(cfg)
    mv = client.get_model_version(cfg.tracking.registered_model, rec.version)
    assert mv.run_id == rec.run_id and mv.source == f"runs:/{rec.run_id}/actor"
    assert mv.tags["model_version"] == meta["model_version"] and mv.tags["ds"] == DS
    assert mv.tags["status"] == "candidate"

    # the same training logged again (the task retried after logging): a second run,
    # but the same single registered version
    again = track_training(cfg, DS, out)
    assert again is not None and again.run_id != rec.run_id
    assert again.version == rec.version and again.reused
    assert [str(v.version) for v in tracker.versions_of(meta["model_version"])] == [rec.version]

    # tracking off: nothing logged at all
    runs = len(client.search_runs([tracker.experiment_id()]))
    assert track_training(config(tmp, "tracking.enabled=false"), DS, out) is None
    assert len(client.search_runs([tracker.experiment_id()])) == runs == 2


def test_a_day_trained_again_keeps_one_version_and_its_alias(tmp_path):
    tracker = tracker_of(config(tmp_path))
    _, v1 = fake_run(tracker, tmp_path, "algo-2031-03-01", "aaa")
    tracker.set_status("algo-2031-03-01", "published")
    assert tracker.set_champion("algo-2031-03-01") == v1
    # the day trained again (a resumed task that retrained: another actor file)
    run2, v2 = fake_run(tracker, tmp_path, "algo-2031-03-01", "bbb")
    found = tracker.versions_of("algo-2031-03-01")
    assert [str(mv.version) for mv in found] == [v2] and v2 != v1
    assert found[0].run_id == run2 and found[0].tags["actor_sha256"] == "bbb"
    assert found[0].tags["status"] == "published" and tracker.champion() == v2


def test_publish_and_rollback_move_the_champion(tmp_path, monkeypatch):
    import jobs.publish as publish

    cfg = config(tmp_path)
    tracker = tracker_of(cfg)
    day1, day2, day3 = "algo-2031-03-01", "algo-2031-03-02", "algo-2031-03-03"
    _, v1 = fake_run(tracker, tmp_path, day1, "s1")
    _, v2 = fake_run(tracker, tmp_path, day2, "s2")
    _, v3 = fake_run(tracker, tmp_path, day3, "s3")
    serving = {"ref": FIXED_POLICY}  # what policy_registry says serves from now on
    monkeypatch.setattr(publish, "current_policy", lambda spark, db: serving["ref"])

    def status(model_version: str) -> str:
        return tracker.versions_of(model_version)[0].tags["status"]

    assert tracker.champion() is None
    # day 1 published: champion on it
    serving["ref"] = PolicyRef(day1, "algo", "pair")
    assert publish.mirror_registry(None, cfg, {day1: "published"}, "publish") == v1
    assert tracker.champion() == v1 and status(day1) == "published"
    # day 2 published: the alias moves; a rerun sets the same state
    serving["ref"] = PolicyRef(day2, "algo", "pair")
    for _ in range(2):
        assert publish.mirror_registry(None, cfg, {day2: "published"}, "publish") == v2
        assert tracker.champion() == v2 and status(day2) == "published"
    # day 3 rejected: tagged, the alias stays
    assert publish.mirror_registry(None, cfg, {day3: "rejected"}, "publish") == v2
    assert tracker.champion() == v2 and status(day3) == "rejected"
    # day 2 rolled back: day 1 serves again
    serving["ref"] = PolicyRef(day1, "algo", "pair")
    assert publish.mirror_registry(None, cfg, {day2: "rolled_back"}, "rollback") == v1
    assert tracker.champion() == v1 and status(day2) == "rolled_back"
    # day 1 rolled back too: the fixed weights serve, no champion
    serving["ref"] = FIXED_POLICY
    for _ in range(2):  # idempotent, also with no alias left to remove
        assert publish.mirror_registry(None, cfg, {day1: "rolled_back"}, "rollback") is None
        assert tracker.champion() is None and status(day1) == "rolled_back"
    client = tracker.client
    assert CHAMPION not in client.get_registered_model(tracker.model).aliases
    # a published policy trained without tracking has no version: no stale champion
    tracker.set_champion(day3)
    serving["ref"] = PolicyRef("algo-2031-03-04", "algo", "pair")
    assert publish.mirror_registry(None, cfg, {"algo-2031-03-04": "published"},
                                   "publish") is None
    assert tracker.champion() is None


def test_tracking_failure_warns_unless_strict(trained, monkeypatch, caplog):
    from jobs.train import track_training
    from store.tracking import Tracker

    tmp, cfg, out = trained

    def broken(*a, **k):
        raise ConnectionError("tracking server unreachable")

    monkeypatch.setattr(Tracker, "log_training", broken)
    with caplog.at_level(logging.WARNING, logger="store.tracking"):
        assert track_training(cfg, DS, out) is None
    assert "tracking server unreachable" in caplog.text
    assert Artifact(out).actor.exists()  # the artifact folder is the record
    with pytest.raises(ConnectionError):
        track_training(config(tmp, "tracking.strict=true"), DS, out)
