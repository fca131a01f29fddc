"""The local Airflow's doors: loopback by default, the generated password owner-only, and
the launcher stops its whole process group on a signal."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time


def test_api_server_listens_on_loopback_unless_told(monkeypatch):
    from mtf.airflow_ui import ui_env

    monkeypatch.delenv("MTF_AIRFLOW_HOST", raising=False)
    env = ui_env(8123)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8123"
    monkeypatch.setenv("MTF_AIRFLOW_HOST", "0.0.0.0")
    assert ui_env(8123)["AIRFLOW__API__BASE_URL"] == "http://localhost:8123"


def test_airflow_is_sized_for_the_machine_unless_told(monkeypatch):
    from mtf.cli import airflow_env

    for key in ("AIRFLOW__CORE__PARALLELISM", "AIRFLOW__API__WORKERS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    env = airflow_env()
    assert env["AIRFLOW__CORE__PARALLELISM"] == "4" and env["AIRFLOW__API__WORKERS"] == "1"
    assert env["AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES"] == "1"
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "64")
    assert airflow_env()["AIRFLOW__CORE__PARALLELISM"] == "64"


def test_generated_password_file_is_made_owner_only(tmp_path):
    from mtf.airflow_ui import PASSWORDS_FILE, admin_password

    path = tmp_path / PASSWORDS_FILE
    path.write_text(json.dumps({"admin": "s3cret"}))
    path.chmod(0o644)
    assert admin_password(tmp_path, timeout=1) == "s3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _terminated_leaves_nothing(tmp_path, start: str) -> None:
    """Run `start` (Python, after `import mtf.airflow_ui as ui`) with a stand-in `airflow
    standalone` (a shell that starts a grandchild) and an API server that never answers;
    SIGTERM it once the grandchild runs: it exits 128 + SIGTERM, and the grandchild is gone."""
    fake = tmp_path / "airflow"
    pidfile = tmp_path / "grandchild.pid"
    fake.write_text(f"#!/bin/sh\nsleep 600 &\necho $! > {pidfile}\nwait\n")
    fake.chmod(0o755)
    code = f"""
import sys, time
import mtf.airflow_ui as ui
sys.executable = {str(tmp_path / "python")!r}  # `airflow` is found beside it
ui.wait_healthy = lambda *a, **k: time.sleep(600)
{start}
"""
    env = dict(os.environ, MTF_AIRFLOW_HOME=str(tmp_path / "home"), MTF_SPARK_CONNECT="off")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 60
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    grandchild = int(pidfile.read_text())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_launcher_stops_its_process_group_on_sigterm(tmp_path):
    """`make airflow`'s launcher, terminated while Airflow runs, leaves nothing behind."""
    _terminated_leaves_nothing(tmp_path, 'sys.exit(ui.main(["--port", "8765"]))')


def test_demo_stops_airflow_on_sigterm(tmp_path):
    """`mtf demo` on the scheduler, terminated while Airflow starts, leaves nothing behind."""
    _terminated_leaves_nothing(tmp_path, "from mtf.scheduler import Airflow\n"
                                         "Airflow.start(port=8766)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie waits for its reaper: it is gone
        return f.read().split()[2] != "Z"
