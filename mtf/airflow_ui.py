"""Airflow's web UI for the project: `make airflow` (standalone) and the UI test.

`airflow standalone` starts the API server (UI), scheduler, DAG processor and triggerer
against the project's environment (`mtf.cli.airflow_env`: DAG folder, local metadata DB,
the `mtf_spark` connection). Airflow 3's simple auth manager generates the admin password
on first start and keeps it in `$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated`
({"admin": "<password>"}); this module waits until the UI answers, then prints the URL and
the login, so nobody has to dig them out of interleaved process logs.

    python -m mtf.airflow_ui [--port 8080]         # what `make airflow` runs

It starts the warehouse's Spark service first when none runs (`mtf spark start`; config
`spark.connect`), so that the DAGs' Spark steps attach to it instead of starting a JVM each.

The port is configurable because the task runners reach the API server's execution API at
the same base URL (`AIRFLOW__API__BASE_URL`), so both must move together.

Doors: the API server listens on 127.0.0.1 only (`MTF_AIRFLOW_HOST` to open it, e.g. behind
a reverse proxy with real authentication: the simple auth manager is for development), and
Airflow runs under umask 077, so its generated password file, metadata DB and logs are
readable by their owner only. The launcher stops the whole process group when it ends, on
Ctrl-C, SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
ADMIN = "admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ui_host() -> str:
    """The address the API server listens on: loopback unless MTF_AIRFLOW_HOST says."""
    return os.environ.get("MTF_AIRFLOW_HOST", "127.0.0.1")


def ui_env(port: int, home: Path | None = None) -> dict[str, str]:
    """airflow_env() with the API server (UI + execution API) on `port` and, if given,
    another AIRFLOW_HOME (its own metadata DB, logs and generated password)."""
    from mtf.cli import airflow_env

    env = airflow_env()
    if home is not None:
        env["AIRFLOW_HOME"] = str(home)
    host = ui_host()
    env.setdefault("MTF_PUBLISH_DEADLINE_H", "30")  # the scheduler evaluates the deadline
    env.update({
        "AIRFLOW__API__HOST": host,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://{'localhost' if host == '0.0.0.0' else host}:{port}",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
    })
    return env


def wait_healthy(base_url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Block until the API server answers its health endpoint (or fail with the reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"Airflow exited with code {proc.returncode} before the UI "
                               f"came up")
        try:
            with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1.0)
    raise TimeoutError(f"Airflow UI at {base_url} not healthy after {timeout:.0f} s")


def admin_password(home: Path, timeout: float = 60.0) -> str:
    """The admin password the simple auth manager generated (written on first start)."""
    path = home / PASSWORDS_FILE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            os.chmod(path, 0o600)  # a secret: its owner only, whoever's umask made it
            return json.loads(path.read_text())[ADMIN]
        time.sleep(0.5)
    raise TimeoutError(f"no {path} after {timeout:.0f} s")


def stop_group(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Stop the process group of `proc` (started with start_new_session): SIGTERM, and
    SIGKILL whatever is still alive after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                try:
                    os.killpg(proc.pid, 0)  # any member of the group left?
                except ProcessLookupError:
                    return
            time.sleep(0.2)
    proc.wait()


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit, so that `finally` blocks run (Airflow's process
    group is stopped) when the launcher is terminated, as on Ctrl-C."""

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Airflow standalone with the project's DAGs; "
                                            "prints the UI's URL and login")
    p.add_argument("--port", type=int, default=int(os.environ.get("MTF_AIRFLOW_PORT", 8080)))
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the UI")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    from mtf.cli import ensure_service
    from pipeline.config import load_config

    ensure_service(load_config())  # the DAGs' Spark steps attach to the warehouse's service
    env = ui_env(args.port)
    home = Path(env["AIRFLOW_HOME"])
    airflow = str(Path(sys.executable).parent / "airflow")
    # own process group: standalone's scheduler, DAG processor, triggerer and API server
    # are stopped together when this launcher ends
    proc = subprocess.Popen([airflow, "standalone"], env=env, start_new_session=True,
                            umask=0o077)

    exit_on_signals()
    try:
        base = env["AIRFLOW__API__BASE_URL"]
        wait_healthy(base, args.timeout, proc)
        password = admin_password(home)
        print(f"\n  Airflow UI: {base}\n  login: {ADMIN} / {password}   "
              f"(from {home / PASSWORDS_FILE})\n  DAGs: mtf_simulate, mtf_daily, "
              f"mtf_maintenance (unpause or trigger them in the UI); Ctrl-C stops.\n",
              flush=True)
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_group(proc)


if __name__ == "__main__":
    raise SystemExit(main())
