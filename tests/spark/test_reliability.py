"""Faults and races: interrupted publish, tampered artifacts, gate refusals, rollback,
concurrent writers, input injection and secrets (docs/RELIABILITY.md lists them all)."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import threading
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

DAYS = ("2033-05-01", "2033-05-02", "2033-05-03")


def _write_candidate(cfg, ds: str, publish: bool, reasons: list[str] | None = None):
    """An artifact folder as train + evaluate + gate leave it (tiny exported actor)."""
    import torch

    from core.artifact import model_version
    from model.export import export_actor
    from model.networks import PairActor
    from pipeline.provenance import artifact_dir

    torch.manual_seed(hash(ds) % 1000)
    art = artifact_dir(cfg, ds)
    art.mkdir(parents=True, exist_ok=True)
    sha = export_actor(PairActor(user_tower_hidden=8, hidden=(16,)), art / "actor.pt")
    version = model_version(cfg.algo, ds)
    (art / "meta.json").write_text(json.dumps({
        "actor_sha256": sha, "config": cfg.to_dict(), "seed": 0, "git_sha": "test",
        "data_versions": {"mtf.enhanced_state": 1}}, default=str))
    metrics = {"mtf_gauc": {"value": 0.6}}
    (art / "eval.json").write_text(json.dumps({
        "ds": ds, "model_version": version, "algo": cfg.algo, "train": {"losses/critic": 1.0},
        "candidate": {"model_version": version, "algo": cfg.algo, "metrics": metrics},
        "current": {"model_version": "fixed-v0", "algo": "fixed", "metrics": metrics}}))
    (art / "gate.json").write_text(json.dumps({"publish": publish, "reasons": reasons or []}))
    _tracker(cfg).log_training(run_name=version, params={}, tags={}, data_versions={},
                               metrics=[], final_metrics={}, actor=art / "actor.pt",
                               model_version=version, ds=ds, actor_sha256=sha)
    return art, version


def _tracker(cfg):
    """The MLflow tracker of the test warehouse (its local SQLite store)."""
    from store.tracking import Tracker

    return Tracker.from_config(cfg.tracking, cfg.storage)


def _mlflow_status(cfg, version: str) -> str:
    (mv,) = _tracker(cfg).versions_of(version)
    return mv.tags["status"]


def _registry(spark, db: str) -> dict[str, dict]:
    return {r["model_version"]: r.asDict() for r in spark.table(f"{db}.policy_registry")
            .where("ds LIKE '2033-05-%'").collect()}


@pytest.fixture(scope="module")
def day_states(spark, cfg):
    """enhanced_state rows for DAYS[1], so that fusion_weights has rows to rewrite."""
    from core.policy import FixedWeightsPolicy
    from jobs.build_enhanced_state import build_enhanced_state
    from jobs.simulate import to_spark
    from sim import World, simulate_day
    from store.tables import BRONZE, write_partition

    db = cfg.storage.database
    logs = simulate_day(World.build(cfg.sim, n_users=30), FixedWeightsPolicy(), DAYS[1],
                        explore=True)
    frames = {t: to_spark(spark, getattr(logs, t), db, t) for t in BRONZE}
    es, _ = build_enhanced_state(*(frames[t] for t in BRONZE), cfg.reward, cfg.data)
    return write_partition(es, db, "enhanced_state", DAYS[1])


@pytest.mark.spark
def test_build_state_rerun_gives_identical_tables(spark, cfg):
    from core.policy import FixedWeightsPolicy
    from jobs import build_enhanced_state
    from jobs.simulate import to_spark
    from sim import World, simulate_day
    from store.tables import BRONZE, write_partition

    db, ds = cfg.storage.database, "2033-05-10"
    logs = simulate_day(World.build(cfg.sim, n_users=20), FixedWeightsPolicy(), ds,
                        explore=True)
    for t in BRONZE:
        write_partition(to_spark(spark, getattr(logs, t), db, t), db, t, ds)

    def snapshot():
        return {t: sorted(map(str, spark.sql(f"SELECT * FROM {db}.{t} WHERE ds = '{ds}'")
                              .collect())) for t in ("enhanced_state", "user_state")}

    first = build_enhanced_state.run(spark, cfg, ds)
    before = snapshot()
    assert first["enhanced_state"] == len(logs.raw_requests) == len(before["enhanced_state"])
    assert build_enhanced_state.run(spark, cfg, ds) == first
    assert snapshot() == before


@pytest.mark.spark
def test_interrupted_publish_leaves_no_published_row_and_rerun_completes(
        spark, cfg, day_states, monkeypatch):
    import jobs.publish as publish
    from store.registry import serving_policy

    db = cfg.storage.database
    _write_candidate(cfg, DAYS[0], publish=True)
    publish.run(spark, cfg, DAYS[0])
    _, version = _write_candidate(cfg, DAYS[1], publish=True)

    def crash(*a, **k):
        raise RuntimeError("killed between fusion_weights and the registry")

    monkeypatch.setattr(publish, "upsert_registry", crash)
    with pytest.raises(RuntimeError, match="killed"):
        publish.run(spark, cfg, DAYS[1])
    # weights were written, but nobody serves the half-published candidate
    assert version not in _registry(spark, db)
    assert serving_policy(spark, db, DAYS[2]).model_version == f"{cfg.algo}-{DAYS[0]}"
    monkeypatch.undo()
    out = publish.run(spark, cfg, DAYS[1])
    assert out["published"] and out["fusion_weights"] > 0
    assert _registry(spark, db)[version]["status"] == "published"
    assert serving_policy(spark, db, DAYS[2]).model_version == version


@pytest.mark.spark
def test_tampered_artifact_is_rejected_at_publish_and_refused_at_load(spark, cfg):
    import jobs.publish as publish
    from store.registry import PolicyRef, load_policy

    db = cfg.storage.database
    art, version = _write_candidate(cfg, DAYS[2], publish=True)
    meta = json.loads((art / "meta.json").read_text())
    with (art / "actor.pt").open("ab") as f:
        f.write(b"tampered")
    out = publish.run(spark, cfg, DAYS[2])
    assert not out["published"]
    row = _registry(spark, db)[version]
    assert row["status"] == "rejected" and "checksum" in row["reason"]
    ref = PolicyRef(version, cfg.algo, "pair", str(art / "actor.pt"), meta["actor_sha256"])
    with pytest.raises(Exception, match="(?i)sha256|checksum"):
        load_policy(ref)


@pytest.mark.spark
def test_gate_refusal_is_recorded_and_the_previous_policy_keeps_serving(spark, cfg):
    import jobs.publish as publish
    from store.registry import serving_policy

    db = cfg.storage.database
    ds = "2033-05-04"
    before = serving_policy(spark, db, ds).model_version
    _, version = _write_candidate(cfg, ds, publish=False,
                                  reasons=["mtf_gauc regressed: 0.55 < 0.60 - 0.02"])
    out = publish.run(spark, cfg, ds)
    assert not out["published"]
    row = _registry(spark, db)[version]
    assert row["status"] == "rejected" and "mtf_gauc regressed" in row["reason"]
    assert serving_policy(spark, db, "2033-05-05").model_version == before


@pytest.mark.spark
def test_failed_training_is_recorded_and_the_previous_policy_keeps_serving(spark, cfg,
                                                                            monkeypatch):
    """A NaN that stops training: the train step fails, nothing is exported, the registry
    holds a rejected row saying why; a published row of the same day is never demoted."""
    import jobs.train as train_job
    from model.enhanced_rl import NonFiniteError
    from store.registry import serving_policy
    from store.snapshot import Snapshot

    db = cfg.storage.database
    ds = "2033-05-06"
    before = serving_policy(spark, db, "2033-05-07").model_version
    snap = Snapshot(f"{db}.enhanced_state", 7, "loc", [ds], "train", ["f"], 10)
    monkeypatch.setattr(train_job, "pin_snapshot", lambda cfg, ds: (snap, {snap.table: 7}))

    def diverge(*args, **kwargs):
        raise NonFiniteError("training diverged at step 3: {'losses/critic': nan}")

    monkeypatch.setattr(train_job, "train", diverge)
    with pytest.raises(NonFiniteError):
        train_job.main(["--ds", ds, "--profile", "test", "--no-progress"])
    version = f"{cfg.algo}-{ds}"
    row = _registry(spark, db)[version]
    assert row["status"] == "rejected" and row["artifact_uri"] == ""
    assert row["reason"] == "training failed: training diverged at step 3: " \
                            "{'losses/critic': nan}"
    assert json.loads(row["data_versions"]) == {f"{db}.enhanced_state": 7}
    assert serving_policy(spark, db, "2033-05-07").model_version == before
    assert not (Path(cfg.storage.artifacts_path()) / version).exists()
    # a later day published, then its rerun fails: the published row stays published
    spark.sql(f"UPDATE {db}.policy_registry SET status = 'published' "
              f"WHERE model_version = '{version}'")
    with pytest.raises(NonFiniteError):
        train_job.main(["--ds", ds, "--profile", "test", "--no-progress"])
    assert _registry(spark, db)[version]["status"] == "published"
    spark.sql(f"UPDATE {db}.policy_registry SET status = 'rejected' "
              f"WHERE model_version = '{version}'")


@pytest.mark.spark
def test_rollback_restores_the_previous_policy_and_its_weights(spark, cfg, day_states):
    from jobs.rollback import run
    from store.registry import serving_policy

    db = cfg.storage.database
    latest = f"{cfg.algo}-{DAYS[1]}"
    if _registry(spark, db).get(latest, {}).get("status") != "published":
        pytest.skip("needs the publish test's state")
    previous = f"{cfg.algo}-{DAYS[0]}"
    # MLflow followed the publications: champion on the newest published, statuses tagged
    tracker = _tracker(cfg)
    assert tracker.champion() == tracker.version_of(latest) is not None
    assert _mlflow_status(cfg, latest) == _mlflow_status(cfg, previous) == "published"
    assert _mlflow_status(cfg, f"{cfg.algo}-{DAYS[2]}") == "rejected"  # the tampered one
    out = run(spark, cfg, reason="test alert", version=latest)
    assert out == {"rolled_back": latest, "now_serving": previous}
    row = _registry(spark, db)[latest]
    assert row["status"] == "rolled_back" and row["reason"] == "test alert"
    assert tracker.champion() == tracker.version_of(previous) is not None
    assert _mlflow_status(cfg, latest) == "rolled_back"
    assert serving_policy(spark, db, DAYS[2]).model_version == previous
    versions = {r[0] for r in spark.sql(f"SELECT DISTINCT model_version FROM {db}.fusion_weights "
                                        f"WHERE ds = '{DAYS[1]}'").collect()}
    assert versions == {previous}
    # idempotent: the same command again changes nothing
    assert run(spark, cfg, reason="test alert", version=latest) == out
    assert tracker.champion() == tracker.version_of(previous)
    assert _mlflow_status(cfg, latest) == "rolled_back"


def _rows(spark, ds: str, n: int):
    from pyspark.sql import functions as F

    return (spark.range(n).select(F.lit(ds).alias("ds"), F.lit("t").alias("model_version"),
                                  F.lit("a").alias("algo"), F.lit("candidate").alias("role"),
                                  F.concat(F.lit("m"), F.col("id").cast("string")).alias("metric"),
                                  F.col("id").cast("double").alias("value"),
                                  F.lit(None).cast("double").alias("ci_low"),
                                  F.lit(None).cast("double").alias("ci_high")))


def _in_threads(*fns) -> list[BaseException | None]:
    errors: list[BaseException | None] = [None] * len(fns)
    start = threading.Barrier(len(fns))

    def wrap(i, fn):
        start.wait()
        try:
            fn()
        except BaseException as e:  # collected for the assertions below
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i, fn)) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.mark.spark
def test_two_days_written_at_once_both_succeed(spark, cfg):
    from store.tables import write_partition

    db = cfg.storage.database
    days = ("2033-06-01", "2033-06-02")
    errors = _in_threads(*[lambda d=d, n=n: write_partition(_rows(spark, d, n), db,
                                                             "offline_metrics", d)
                           for d, n in zip(days, (30, 40))])
    assert errors == [None, None]
    for d, n in zip(days, (30, 40)):
        assert spark.sql(f"SELECT count(*) FROM {db}.offline_metrics WHERE ds = '{d}'"
                         ).first()[0] == n


@pytest.mark.spark
def test_same_day_written_twice_at_once_never_duplicates(spark, cfg):
    from store.tables import write_partition

    db = cfg.storage.database
    ds = "2033-06-03"
    errors = _in_threads(*[lambda: write_partition(_rows(spark, ds, 25), db,
                                                   "offline_metrics", ds)] * 2)
    # Delta's optimistic commit serializes them; a writer that lost the race retries its
    # (idempotent) overwrite, so both succeed and the partition is never doubled
    assert errors == [None, None]
    assert spark.sql(f"SELECT count(*), count(DISTINCT metric) FROM {db}.offline_metrics "
                     f"WHERE ds = '{ds}'").first() == (25, 25)


@pytest.mark.parametrize("bad", [
    "2026-01-01' OR '1'='1", "2026-13-01", "2026-02-30", "../../etc", "2026-01-01/../x",
    "2026-01-01; DROP TABLE mtf.policy_registry", "", " 2026-01-01", "2026-1-1"])
def test_ds_injection_is_refused_everywhere(bad):
    from core.ds import validate_ds
    from pipeline.config import load_config
    from pipeline.entry import job_parser
    from store.landing import landing_path

    with pytest.raises(ValueError):
        validate_ds(bad)
    with pytest.raises(ValueError):
        landing_path(load_config("test"), "raw_users", bad)
    with pytest.raises(SystemExit):
        job_parser("x").parse_args(["--ds", bad])


@pytest.mark.parametrize("table", ["raw_users; DROP TABLE x", "../raw_users", "raw_users`",
                                   "policy_registry --", "unknown_table"])
def test_table_names_are_whitelisted(table):
    from pipeline.config import load_config
    from store.landing import landing_path
    from store.tables import qualified

    with pytest.raises(ValueError):
        qualified("mtf", table)
    with pytest.raises(ValueError):
        landing_path(load_config("test"), table, "2026-01-01")


_SECRET = re.compile(
    r"AKIA[0-9A-Z]{16}"                                    # AWS access key id
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"                 # private keys
    r"|(?i:(password|passwd|secret|token|api_key)\s*[:=]\s*['\"][^'\"\s]{6,}['\"])")


def test_no_credentials_in_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT_ROOT, text=True,
                           capture_output=True, check=True).stdout.split()
    hits = []
    for name in files:
        path = PROJECT_ROOT / name
        if path.suffix in {".png", ".pt", ".parquet"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{name}: {m.group(0)[:40]}" for m in _SECRET.finditer(text)]
    assert hits == []


def test_quality_config_is_typed_and_overridable():
    from pipeline.config import load_config

    cfg = load_config("test", ["quality.max_quarantine_fraction=0.2"])
    assert cfg.quality.max_quarantine_fraction == 0.2
    assert dataclasses.asdict(cfg.quality)["valid_watch_s"] == 10.0
