"""Alerts: a task that failed, a candidate the gate rejected, a publication deadline missed,
an online A/B arm that regressed against the holdout.

`MtfAlert` is an Airflow notifier (`airflow.sdk.bases.notifier.BaseNotifier`), attached to
the DAGs' tasks as a callback. When it fires it reads the run's profile (`alerts` section):
- `alerts.log` (default on): one JSON line appended to `<local_dir>/_alerts/alerts.jsonl`
  (`{"at", "kind", "dag_id", "task_id", "ds", "run_id", "try", "message", "log_url"}`),
  the embedded default that tests and a person's `tail -f` read;
- `alerts.smtp_to`: also an e-mail through the SMTP provider's notifier, on the Airflow
  connection `alerts.smtp_conn_id`.
Any other channel (Slack, PagerDuty) is another notifier beside it. A notifier that fails
logs the error and never fails the task it reports on.

`deadline_missed` is the callback of `mtf_daily`'s Deadline Alert (Airflow's scheduler
calls it when a run has not finished `MTF_PUBLISH_DEADLINE_H` hours after its logical date:
with the default 30 h, the policy of day D was not published by 06:00 UTC on D+1). It
writes a `deadline_missed` alert through the same channels.

`online_regression` is the success callback of `online_metrics` (`OnlineRegressionAlert`):
it reads the day's A/B summary the job wrote (`<local_dir>/_reports/<ds>/online_ab.json`,
jobs/online_metrics.py) and alerts when an arm is worse than the holdout beyond
`ab.regression_threshold` (its UVC or UDT lift below minus the threshold with the whole 95%
CI below 0). The task itself stays green: the data is right, the policy is not.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

log = logging.getLogger(__name__)


def alert_record(kind: str, context: dict[str, Any], message: str) -> dict[str, Any]:
    ti = context.get("task_instance") or context.get("ti")
    params = context.get("params") or {}
    return {
        "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "kind": kind,
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "ds": params.get("ds") or context.get("ds"),
        "run_id": context.get("run_id") or getattr(ti, "run_id", None),
        "try": getattr(ti, "try_number", None),
        "profile": params.get("profile"),
        "message": message,
        "log_url": getattr(ti, "log_url", None),
    }


def append_alert(path: str | Path, record: dict[str, Any]) -> None:
    """One JSON line, appended in one write (O_APPEND: concurrent writers do not interleave
    lines of this size)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(record, default=str) + "\n").encode())
    finally:
        os.close(fd)


class MtfAlert(BaseNotifier):
    """Notify about `kind` (`task_failed`, `gate_rejected`, `deadline_missed`,
    `online_regression`) through the channels of the run's profile. `message(context)` says
    what happened."""

    def __init__(self, kind: str, message=None):
        super().__init__()
        self.kind = kind
        self.message = message

    def _text(self, context) -> str:
        if self.message is not None:
            return self.message(context)
        exc = context.get("exception")
        return repr(exc) if exc is not None else self.kind

    def notify(self, context) -> None:
        try:
            text = self._text(context)
        except Exception:  # a message that cannot be read must not change the task either
            log.exception("could not word the %s alert", self.kind)
            return
        self.send(context, text)

    def send(self, context, text: str) -> None:
        """Deliver the alert with message `text` to the channels of the run's profile."""
        try:
            _, cfg = run_day_config(context)
            record = alert_record(self.kind, context, text)
            if cfg.alerts.log:
                append_alert(cfg.storage.alerts_path(), record)
            if cfg.alerts.smtp_to:
                from airflow.providers.smtp.notifications.smtp import SmtpNotifier

                SmtpNotifier(to=list(cfg.alerts.smtp_to), smtp_conn_id=cfg.alerts.smtp_conn_id,
                             subject=f"mtf-rl {record['kind']}: {record['dag_id']}."
                                     f"{record['task_id']} {record['ds']}",
                             html_content=f"<pre>{json.dumps(record, indent=1)}</pre>"
                             ).notify(context)
            log.warning("mtf-rl ALERT %s: %s", self.kind, record["message"])
        except Exception:  # an alert channel down must not change the task's outcome
            log.exception("could not deliver the %s alert", self.kind)


class OnlineRegressionAlert(MtfAlert):
    """`online_regression`, sent only when the day's A/B summary lists a regressed arm."""

    def __init__(self):
        super().__init__("online_regression", online_regression_text)

    def notify(self, context) -> None:
        try:
            text = online_regression_text(context)
        except Exception:
            log.exception("could not read the day's A/B summary")
            return
        if text:
            self.send(context, text)


def run_day_config(context) -> tuple[str | None, Any]:
    """(the run's data day, its profile's PipelineConfig) from a callback's context."""
    from pipeline.config import load_config

    params = context.get("params") or {}
    return params.get("ds") or context.get("ds"), load_config(params.get("profile"))


def online_regression_text(context) -> str:
    """What regressed on the day (empty when nothing did), from online_ab.json."""
    from core.ab import lift_text
    from jobs.online_metrics import ab_summary_path

    ds, cfg = run_day_config(context)
    summary = json.loads(ab_summary_path(cfg, str(ds)).read_text())
    bad = [a for a in summary.get("arms", []) if a.get("regression")]
    if not bad:
        return ""

    parts = [f"arm {a['arm']} ({a['policy_version']}) against the holdout: UVC "
             f"{lift_text(a, 'uvc', missing='n/a')}, UDT {lift_text(a, 'udt', missing='n/a')}"
             for a in bad]
    return (f"online regression on {ds} beyond {100 * summary['threshold']:.1f}%: "
            + "; ".join(parts))


def gate_reasons(context) -> str:
    """The gate's refusal, from the candidate's gate.json (jobs/gate.py)."""
    from pipeline.provenance import artifact_dir

    ds, cfg = run_day_config(context)
    path = artifact_dir(cfg, ds) / "gate.json"
    try:
        reasons = json.loads(path.read_text()).get("reasons") or []
    except (OSError, ValueError):
        reasons = [f"no readable {path}"]
    return f"candidate of {ds} rejected by the gate: " + "; ".join(map(str, reasons))


def deadline_missed(context: dict[str, Any] | None = None, **_: Any) -> None:
    """Deadline Alert callback: the scheduler's context has the late run (`dag_run`: its
    id, logical date, conf) and the `deadline` it missed."""
    context = context or {}
    run = context.get("dag_run") or {}
    conf = run.get("conf") or {}
    logical = str(run.get("logical_date") or "")[:10] or None
    ctx = {"params": {"profile": conf.get("profile"), "ds": conf.get("ds") or logical},
           "run_id": run.get("dag_run_id") or run.get("run_id"),
           "task_instance": _Run(run.get("dag_id"))}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    MtfAlert("deadline_missed", lambda c: f"run {ctx['run_id']} of day {ctx['params']['ds']} "
                                          f"has not finished by its deadline {deadline}"
             ).notify(ctx)


class _Run:
    """The attributes alert_record reads, for a run (no task) that is late."""

    def __init__(self, dag_id: str | None):
        self.dag_id, self.task_id, self.try_number, self.log_url = dag_id, None, None, None
