"""What `mtf demo` prints while Airflow runs a DAG: each task as it starts and ends, with
its duration, a progress bar for training, and a table of task times at the end.

It reads the lines `airflow dags test` writes (`[DAG TEST] starting task_id=...`,
`Task instance state updated ... new_state=...`, `[DAG TEST] end task task_id=...`) and the
trainer's `train <ds>: step i/n` log lines.
"""

from __future__ import annotations

import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TextIO

_START = re.compile(r"\[DAG TEST\] starting task_id=(\S+)")
_END = re.compile(r"\[DAG TEST\] end task task_id=(\S+)")
_STATE = re.compile(r"Task instance state updated.*new_state=(\w+)")
STEP_RE = re.compile(r"train \S+: step (\d+)/(\d+)")
_RUN_DONE = re.compile(r"DagRun Finished: .*state=(\w+)")


@dataclass
class TaskTime:
    dag_id: str
    ds: str
    task_id: str
    state: str
    seconds: float


@dataclass
class DagProgress:
    """Feed it a DAG run's output lines; it prints task starts and ends to `out`."""

    dag_id: str
    ds: str
    out: TextIO = sys.stdout
    tty: bool = False
    clock: Callable[[], float] = time.monotonic
    tasks: list[TaskTime] = field(default_factory=list)
    run_state: str | None = None
    tail: deque = field(default_factory=lambda: deque(maxlen=300))
    _task: str | None = None
    _state: str = "?"
    _t0: float = 0.0
    _bar: bool = False

    def feed(self, line: str) -> None:
        self.tail.append(line)
        if m := _START.search(line):
            self._task, self._state, self._t0 = m.group(1), "running", self.clock()
            self._print(f"   {self.dag_id} {self.ds} {self._task} ...")
        elif m := _STATE.search(line):
            self._state = m.group(1)
        elif (m := _END.search(line)) and self._task:
            took = self.clock() - self._t0
            self.tasks.append(TaskTime(self.dag_id, self.ds, self._task, self._state, took))
            mark = "ok" if self._state in ("success", "skipped") else self._state.upper()
            self._print(f"   {self.dag_id} {self.ds} {self._task}: {mark} in {took:.1f} s")
            self._task = None
        elif (m := STEP_RE.search(line)) and self.tty:
            i, n = int(m.group(1)), int(m.group(2))
            filled = round(30 * i / n)
            self.out.write(f"\r     train [{'#' * filled}{'.' * (30 - filled)}] {i}/{n}")
            self.out.flush()
            self._bar = True
        elif m := _RUN_DONE.search(line):
            self.run_state = m.group(1)

    def _print(self, text: str) -> None:
        if self._bar:  # end the progress bar's line first
            self.out.write("\n")
            self._bar = False
        print(text, file=self.out, flush=True)

    @property
    def failed(self) -> bool:
        return (self.run_state not in (None, "success")
                or any(t.state not in ("success", "skipped") for t in self.tasks))


def task_table(tasks: Iterable[TaskTime]) -> str:
    """Seconds per task (rows) and day (columns), with each day's total."""
    from tabulate import tabulate

    tasks = list(tasks)
    days = sorted({t.ds for t in tasks})
    keys = list(dict.fromkeys((t.dag_id, t.task_id) for t in tasks))
    secs = {(t.dag_id, t.task_id, t.ds): t.seconds for t in tasks}
    rows = [[f"{dag}.{task}", *(f"{secs[(dag, task, d)]:.1f}" if (dag, task, d) in secs
                                else "-" for d in days)] for dag, task in keys]
    rows.append(["total", *(f"{sum(t.seconds for t in tasks if t.ds == d):.1f}"
                            for d in days)])
    return tabulate(rows, headers=["task (s)", *days])
