"""`mtf demo` on Airflow's real scheduler: the days run as DAG runs the scheduler executes,
watched and driven through Airflow's REST API, so the UI shows what production would.

`airflow standalone` (API server, scheduler, DAG processor, triggerer; `mtf.airflow_ui`)
starts over the project's Airflow home, on a free port unless MTF_AIRFLOW_PORT is set, with
two demo settings: the scheduler creates no run from the DAGs' `@daily` schedule
(`[scheduler] use_job_schedule = False`: only the runs the demo triggers), and no Deadline
Alert (the demo's data days are long past: every deadline would be missed). For each day the
demo unpauses the DAG, triggers a run whose id names the data day (`demo__2026-01-01`;
`demo__2026-01-01__2` when that id exists from an earlier demo), and polls the run and its
task instances (`/api/v2`, a token of the simple auth manager's admin), printing each task as
it starts and ends with the duration Airflow recorded, and a training progress bar from the
train task's log file. When a daily run ends, its note links the day's report. At the end
the DAGs are paused again (as they were found) and Airflow is stopped; the runs, task logs
and durations stay in the metadata DB and `$AIRFLOW_HOME/logs` for `make airflow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mtf.progress import STEP_RE, TaskTime

TERMINAL = {"success", "failed", "skipped", "upstream_failed", "removed"}
RUN_TERMINAL = {"success", "failed"}


class AirflowError(RuntimeError):
    """Airflow's API refused a call or a component did not come up."""


@dataclass
class Airflow:
    """A running `airflow standalone` and a REST client of its API server."""

    base: str
    home: Path
    proc: subprocess.Popen | None = None
    token: str = ""
    log_path: Path | None = None

    @classmethod
    def start(cls, port: int | None = None, timeout: float = 600.0) -> Airflow:
        """Start Airflow; a SIGTERM or SIGHUP of this process then unwinds to `stop`."""
        from mtf.airflow_ui import (
            ADMIN,
            admin_password,
            exit_on_signals,
            free_port,
            ui_env,
            wait_healthy,
        )

        exit_on_signals()

        port = port or int(os.environ.get("MTF_AIRFLOW_PORT", 0)) or free_port()
        env = ui_env(port)
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"  # only the triggered runs
        env["MTF_PUBLISH_DEADLINE_H"] = ""  # past data days: every deadline would be missed
        home = Path(env["AIRFLOW_HOME"])
        log_path = home / "standalone.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"),
                                     "standalone"], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    umask=0o077)
        af = cls(env["AIRFLOW__API__BASE_URL"], home, proc, log_path=log_path)
        try:
            wait_healthy(af.base, timeout, proc)
            af.login(ADMIN, admin_password(home))
        except BaseException:
            af.stop()
            raise
        return af

    def stop(self) -> None:
        from mtf.airflow_ui import stop_group

        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def login(self, user: str, password: str) -> None:
        self.token = self._call("POST", "/auth/token",
                                {"username": user, "password": password})["access_token"]

    def _call(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {self.token}"}
                                                 if self.token else {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            raise AirflowError(f"{method} {path}: HTTP {e.code} "
                               f"{e.read().decode(errors='replace')[:500]}") from None
        return json.loads(text) if text else {}

    def api(self, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
        return self._call(method, "/api/v2" + path, body)

    def wait_for_dag(self, dag_id: str, timeout: float = 300.0) -> None:
        """Until the DAG processor has parsed `dag_id` (a fresh home has no DAG yet)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("GET", f"/dags/{dag_id}")
                return
            except AirflowError:
                if time.monotonic() > deadline:
                    raise AirflowError(f"DAG {dag_id} not parsed after {timeout:.0f} s "
                                       f"(see {self.log_path})") from None
                time.sleep(2.0)

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.api("GET", f"/dags/{dag_id}")["is_paused"])

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def free_run_id(self, dag_id: str, run_id: str) -> str:
        """`run_id`, or `run_id__2`, `__3`... when a run with that id exists."""
        n = 1
        candidate = run_id
        while True:
            try:
                self.api("GET", f"/dags/{dag_id}/dagRuns/{candidate}")
            except AirflowError as e:
                if "HTTP 404" in str(e):
                    return candidate
                raise
            n += 1
            candidate = f"{run_id}__{n}"

    def trigger(self, dag_id: str, run_id: str, ds: str, conf: dict[str, Any]) -> str:
        run_id = self.free_run_id(dag_id, run_id)
        self.api("POST", f"/dags/{dag_id}/dagRuns",
                 {"dag_run_id": run_id, "logical_date": f"{ds}T00:00:00Z", "conf": conf})
        return run_id

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
                               f"?limit=100")["task_instances"]

    def set_note(self, dag_id: str, run_id: str, note: str) -> None:
        self.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}?update_mask=note", {"note": note})

    def task_log_file(self, dag_id: str, run_id: str, task_id: str, attempt: int) -> Path:
        """Where the task's log is written (Airflow's default log_filename_template)."""
        return (self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
                / f"task_id={task_id}" / f"attempt={attempt}.log")


@dataclass
class RunWatch:
    """Polls one DAG run to its end, printing task starts and ends and a training bar."""

    af: Airflow
    dag_id: str
    run_id: str
    ds: str
    out: TextIO = sys.stdout
    tty: bool = False
    poll_s: float = 2.0
    tasks: list[TaskTime] = field(default_factory=list)
    state: str | None = None
    _seen: dict[str, str] = field(default_factory=dict)
    _bar: bool = False
    _log_pos: int = 0

    def wait(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if self.state in RUN_TERMINAL:
                self.poll()  # the last task states
                return self.state
            time.sleep(self.poll_s)
        raise AirflowError(f"{self.dag_id} run {self.run_id} not finished after "
                           f"{timeout:.0f} s")

    def poll(self) -> None:
        self.state = self.af.run(self.dag_id, self.run_id)["state"]
        for ti in sorted(self.af.task_instances(self.dag_id, self.run_id),
                         key=lambda t: t.get("start_date") or "~"):
            task, state = ti["task_id"], ti.get("state") or "none"
            before = self._seen.get(task)
            if state == before:
                if state == "running" and task == "train":
                    self._train_bar(ti)
                continue
            self._seen[task] = state
            if state == "running":
                self._print(f"   {self.dag_id} {self.ds} {task} ...")
            elif state in TERMINAL and ti.get("start_date"):
                took = float(ti.get("duration") or 0.0)
                self.tasks.append(TaskTime(self.dag_id, self.ds, task, state, took))
                mark = "ok" if state in ("success", "skipped") else state.upper()
                extra = " (skipped)" if state == "skipped" else ""
                self._print(f"   {self.dag_id} {self.ds} {task}: {mark}{extra} in {took:.1f} s")
            elif state in ("up_for_retry", "up_for_reschedule", "deferred"):
                self._print(f"   {self.dag_id} {self.ds} {task}: {state}")

    def _train_bar(self, ti: dict[str, Any]) -> None:
        if not self.tty:
            return
        path = self.af.task_log_file(self.dag_id, self.run_id, "train",
                                     int(ti.get("try_number") or 1))
        try:
            with path.open("rb") as f:
                f.seek(self._log_pos)
                chunk = f.read()
                self._log_pos = f.tell()
        except OSError:
            return
        steps = STEP_RE.findall(chunk.decode(errors="replace"))
        if steps:
            i, n = map(int, steps[-1])
            filled = round(30 * i / n)
            self.out.write(f"\r     train [{'#' * filled}{'.' * (30 - filled)}] {i}/{n}")
            self.out.flush()
            self._bar = True

    def _print(self, text: str) -> None:
        if self._bar:
            self.out.write("\n")
            self._bar = False
        print(text, file=self.out, flush=True)

    @property
    def failed(self) -> bool:
        return self.state != "success" or any(
            t.state not in ("success", "skipped") for t in self.tasks)

    def failure_log_tail(self, lines: int = 40) -> str:
        """The end of the first failed task's log, for the console."""
        for t in self.tasks:
            if t.state not in ("success", "skipped"):
                for attempt in range(5, 0, -1):
                    path = self.af.task_log_file(self.dag_id, self.run_id, t.task_id, attempt)
                    if path.exists():
                        tail = path.read_text(errors="replace").splitlines()[-lines:]
                        return f"-- {path}\n" + "\n".join(tail)
        return f"(no failed task log; Airflow's own log: {self.af.log_path})"
