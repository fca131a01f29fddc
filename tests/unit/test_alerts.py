"""Alerts: the gate's refusal as an exit code the DAG turns into `skipped`, and the
notifier's line in the local alert log (what an operator's `tail -f` and the tests read)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from test_gate import GOOD, _with

DS = "2031-03-04"


@pytest.fixture()
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("MTF_LOCAL_DIR", str(tmp_path))
    return tmp_path


def _candidate(local, rec) -> None:
    """The day's candidate folder with this evaluation record (what evaluate writes)."""
    from pipeline.config import load_config
    from pipeline.provenance import artifact_dir

    folder = artifact_dir(load_config("test"), DS)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(rec))


def _context(task_id: str, exception=None) -> dict:
    ti = SimpleNamespace(dag_id="mtf_daily", task_id=task_id, try_number=3, run_id="r1",
                         log_url="http://localhost:8080/log")
    return {"task_instance": ti, "params": {"profile": "test", "ds": DS}, "ds": "2031-03-05",
            "run_id": "r1", "exception": exception}


def _alerts(local) -> list[dict]:
    path = local / "_alerts" / "alerts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_gate_exit_code_on_refusal_only(local):
    from jobs.gate import main

    _candidate(local, GOOD)
    args = ["--ds", DS, "--profile", "test", "--reject-exit-code", "99"]
    assert main(args) == 0  # published: success whatever the refusal code
    _candidate(local, _with(["checks", "params_finite"], False))
    assert main(args) == 99
    assert main(args[:-2]) == 0  # by hand, a refusal is a decision, not a failure


def test_failure_and_rejection_alerts_land_in_the_alert_log(local):
    from jobs.gate import main
    from mtf.alerts import MtfAlert, gate_reasons

    _candidate(local, _with(["candidate", "metrics", "mtf_gauc", "value"], 0.5))
    assert main(["--ds", DS, "--profile", "test", "--reject-exit-code", "99"]) == 99
    MtfAlert("gate_rejected", gate_reasons).notify(_context("gate"))
    MtfAlert("task_failed").notify(_context("evaluate", RuntimeError("no evaluation")))
    first, second = _alerts(local)
    assert first["kind"] == "gate_rejected" and first["task_id"] == "gate"
    assert first["ds"] == DS and first["dag_id"] == "mtf_daily" and first["try"] == 3
    assert first["message"].startswith(f"candidate of {DS} rejected by the gate: ")
    assert "mtf_gauc regressed" in first["message"]
    assert second["kind"] == "task_failed" and second["task_id"] == "evaluate"
    assert second["message"] == "RuntimeError('no evaluation')"
    assert second["log_url"] == "http://localhost:8080/log"


def test_a_broken_channel_never_fails_the_task(local, monkeypatch, caplog):
    from mtf.alerts import MtfAlert

    monkeypatch.setattr("mtf.alerts.append_alert",
                        lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    MtfAlert("task_failed").notify(_context("publish"))  # logs, does not raise
    assert "could not deliver the task_failed alert" in caplog.text
    assert _alerts(local) == []


def test_alert_log_can_be_switched_off(local, monkeypatch):
    from mtf.alerts import MtfAlert
    from pipeline.config import load_config

    off = load_config("test", ["alerts.log=false"])
    monkeypatch.setattr("pipeline.config.load_config", lambda *a, **k: off)
    MtfAlert("task_failed").notify(_context("publish"))
    assert _alerts(local) == []


def test_missed_publication_deadline_alerts(local):
    """The Deadline Alert's callback, with the context Airflow's scheduler hands it."""
    from mtf.alerts import deadline_missed

    deadline_missed(context={
        "dag_run": {"dag_id": "mtf_daily", "dag_run_id": "scheduled__2031-03-04T00:00:00+00:00",
                    "logical_date": "2031-03-04T00:00:00Z", "conf": {}},
        "deadline": {"id": "d1", "deadline_time": "2031-03-05T06:00:00Z"}})
    (alert,) = _alerts(local)
    assert alert["kind"] == "deadline_missed" and alert["dag_id"] == "mtf_daily"
    assert alert["ds"] == DS and alert["run_id"] == "scheduled__2031-03-04T00:00:00+00:00"
    assert "has not finished by its deadline 2031-03-05T06:00:00Z" in alert["message"]


def _arm(arm: str, uvc: float, uvc_se: float, udt: float, udt_se: float) -> dict:
    return {"ds": DS, "arm": arm, "policy_version": "fixed-v0" if arm == "holdout" else "p1",
            "users": 400, "uvc": uvc, "uvc_se": uvc_se, "udt": udt, "udt_se": udt_se}


def test_online_regression_alerts_only_on_a_regressed_arm(local):
    from jobs.online_metrics import with_lifts, write_ab_summary
    from mtf.alerts import OnlineRegressionAlert
    from pipeline.config import load_config

    cfg = load_config("test")  # regression_threshold 0.02
    # UVC 3.0 +- 0.05 against 3.3 +- 0.05: lift -9.1%, CI about [-13.0%, -5.2%]
    bad = with_lifts([_arm("holdout", 3.3, 0.05, 100.0, 2.0),
                      _arm("current", 3.0, 0.05, 101.0, 2.0)], cfg.ab.regression_threshold)
    assert [r["regression"] for r in bad] == [False, True]
    assert bad[1]["uvc_lift"] == pytest.approx(3.0 / 3.3 - 1)
    assert bad[0]["uvc_lift"] is None and bad[1]["udt_lift"] == pytest.approx(0.01)
    write_ab_summary(cfg, DS, bad)
    OnlineRegressionAlert().notify(_context("online_metrics"))
    (alert,) = _alerts(local)
    assert alert["kind"] == "online_regression" and alert["task_id"] == "online_metrics"
    assert alert["message"].startswith(f"online regression on {DS} beyond 2.0%: arm current "
                                       "(p1) against the holdout: UVC -9.09% [-13.")
    # the same drop within the noise (CI reaching 0) and a significant small drop: silent
    for current in (_arm("current", 3.0, 0.2, 100.0, 2.0), _arm("current", 3.28, 0.001,
                                                                 100.0, 0.01)):
        rows = with_lifts([_arm("holdout", 3.3, 0.05 if current["uvc_se"] > 0.01 else 0.001,
                                100.0, 0.01), current], cfg.ab.regression_threshold)
        assert not any(r["regression"] for r in rows)
        write_ab_summary(cfg, DS, rows)
        OnlineRegressionAlert().notify(_context("online_metrics"))
    assert len(_alerts(local)) == 1
    # without a summary (the job did not write one): logged, no alert, no exception
    (local / "_reports" / DS / "online_ab.json").unlink()
    OnlineRegressionAlert().notify(_context("online_metrics"))
    assert len(_alerts(local)) == 1
