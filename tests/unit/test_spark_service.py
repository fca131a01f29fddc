"""The Spark service's bookkeeping (no JVM): which session a job gets, the server's command
line, Delta conflict retries, and the demo's progress lines."""

from __future__ import annotations

import io
import json
import os
import socket

import pytest

from mtf.progress import DagProgress, task_table
from store import service
from store.tables import is_conflict, retry_on_conflict


@pytest.fixture()
def svc_cfg(cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("MTF_METASTORE_DIR", str(tmp_path / "meta"))
    monkeypatch.delenv("MTF_SPARK_CONNECT", raising=False)
    (tmp_path / "meta").mkdir()
    return cfg


def _write_state(cfg, pid: int, port: int) -> None:
    state = service.ServiceState(pid=pid, port=port, host="127.0.0.1", warehouse="w", log="l",
                                 started_at=0.0)
    (service._state_path(cfg)).write_text(json.dumps(state.__dict__))


def test_connect_url_modes(svc_cfg, monkeypatch):
    assert service.connect_url(svc_cfg) is None  # auto, no service recorded
    monkeypatch.setenv("MTF_SPARK_CONNECT", "sc://spark.example:15002")
    assert service.connect_url(svc_cfg) == "sc://spark.example:15002"
    monkeypatch.setenv("MTF_SPARK_CONNECT", "off")
    assert service.connect_url(svc_cfg) is None
    monkeypatch.setenv("MTF_SPARK_CONNECT", "yes please")
    with pytest.raises(service.ServiceError, match="auto', 'off' or an sc://"):
        service.connect_url(svc_cfg)


def test_auto_finds_a_live_service_and_ignores_a_dead_one(svc_cfg, monkeypatch):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        _write_state(svc_cfg, os.getpid(), port)
        # this process is alive and listening, but it is not a Spark Connect server
        assert service.connect_url(svc_cfg) is None
        monkeypatch.setattr(service, "_is_server", lambda pid: pid == os.getpid())
        assert service.connect_url(svc_cfg) == f"sc://127.0.0.1:{port}"
        _write_state(svc_cfg, 2 ** 22 + 12345, port)  # no such process
        assert service.connect_url(svc_cfg) is None
    _write_state(svc_cfg, os.getpid(), port)  # the process lives, its port is closed
    assert service.connect_url(svc_cfg) is None
    monkeypatch.undo()
    monkeypatch.setenv("MTF_METASTORE_DIR", str(service._state_path(svc_cfg).parent))
    assert service.stop(svc_cfg) is None  # not a server: nothing is signalled, file removed
    assert service.read_state(svc_cfg) is None


def test_server_command_holds_the_jobs_conf(svc_cfg):
    cmd = service.server_command(svc_cfg, "127.0.0.1", 15555)
    text = " ".join(cmd)
    assert cmd[cmd.index("--class") + 1] == service.SERVER_CLASS
    assert "spark.connect.grpc.binding.address=127.0.0.1" in text
    assert "spark.connect.grpc.binding.port=15555" in text
    assert "io.delta:delta-spark_2.13:" in text
    assert f"databaseName={os.environ['MTF_METASTORE_DIR']}/metastore_db" in text
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in text
    assert cmd[-1] == "spark-internal"


def test_conflicts_are_retried_and_nothing_else(monkeypatch):
    monkeypatch.setattr("store.tables.time.sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("[DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT] Transaction "
                               "conflict detected")
        return "done"

    assert retry_on_conflict(flaky, "test") == "done" and len(calls) == 3
    assert is_conflict(RuntimeError("ConcurrentDeleteReadException: a file was removed"))
    assert not is_conflict(ValueError("[TABLE_OR_VIEW_NOT_FOUND] mtf.nope"))

    def broken():
        calls.append(1)
        raise ValueError("[TABLE_OR_VIEW_NOT_FOUND] mtf.nope")

    calls.clear()
    with pytest.raises(ValueError):
        retry_on_conflict(broken, "test")
    assert len(calls) == 1
    def always_conflicting():
        calls.append(1)
        raise RuntimeError("[DELTA_CONCURRENT_WRITE] lost again")

    calls.clear()
    with pytest.raises(RuntimeError, match="DELTA_CONCURRENT"):  # gives up after `tries`
        retry_on_conflict(always_conflicting, "test", tries=2)
    assert len(calls) == 2


def _lines(task: str, state: str = "success") -> list[str]:
    return [f"2026-12-01T20:35:29Z [info ] [DAG TEST] starting task_id={task} map_index=-1",
            f"2026-12-01T20:35:30Z [info ] Task instance state updated [x] new_state={state} "
            f"rows_affected=1",
            f"2026-12-01T20:35:31Z [info ] [DAG TEST] end task task_id={task} map_index=-1"]


def test_progress_prints_each_task_with_its_duration():
    ticks = iter([0.0, 12.5, 20.0, 21.25])
    out = io.StringIO()
    p = DagProgress("mtf_daily", "2026-01-01", out=out, clock=lambda: next(ticks))
    for line in [*_lines("validate_logs"), *_lines("gate", "failed"),
                 "DagRun Finished: dag_id=mtf_daily, run_duration=3.0, state=failed, x=1"]:
        p.feed(line)
    text = out.getvalue().splitlines()
    assert text == ["   mtf_daily 2026-01-01 validate_logs ...",
                    "   mtf_daily 2026-01-01 validate_logs: ok in 12.5 s",
                    "   mtf_daily 2026-01-01 gate ...",
                    "   mtf_daily 2026-01-01 gate: FAILED in 1.2 s"]
    assert [(t.task_id, t.state, t.seconds) for t in p.tasks] == [
        ("validate_logs", "success", 12.5), ("gate", "failed", 1.25)]
    assert p.failed and p.run_state == "failed"
    table = task_table(p.tasks)
    assert "mtf_daily.validate_logs" in table and "12.5" in table
    assert table.splitlines()[-1].split() == ["total", "13.8"]


def test_progress_bar_of_training_on_a_terminal_only():
    out = io.StringIO()
    p = DagProgress("mtf_daily", "2026-01-01", out=out, tty=True, clock=lambda: 0.0)
    p.feed("[DAG TEST] starting task_id=train map_index=-1")
    p.feed("... INFO jobs.train: train 2026-01-01: step 150/300 [x]")
    assert out.getvalue().endswith("\r     train [" + "#" * 15 + "." * 15 + "] 150/300")
    for line in _lines("train")[1:]:
        p.feed(line)
    assert out.getvalue().endswith("] 150/300\n   mtf_daily 2026-01-01 train: ok in 0.0 s\n")
    quiet = io.StringIO()
    q = DagProgress("mtf_daily", "2026-01-01", out=quiet, tty=False, clock=lambda: 0.0)
    q.feed("... INFO jobs.train: train 2026-01-01: step 150/300 [x]")
    assert quiet.getvalue() == "" and not q.failed
