"""Operator factories, params and callbacks for the DAGs in dags/ (wiring only).

Imported at DAG-parse time, so it stays light: no Spark, torch or pandas imports.
A Spark job's task takes one of two paths, decided when it executes, from the run's profile:
- **Spark Connect client** (the embedded default while the warehouse's Spark service runs,
  `mtf spark start`; or `spark.connect: sc://...`): the task calls the job's `main` in its
  own process, which attaches to the service in well under a second. The provider's
  PySparkOperator would also reach a Connect server, but it hands the callable a bare
  session built from a connection, bypasses the job's arguments and config, and stops the
  session; our jobs already are Connect clients through `store.spark.get_spark`, so a thin
  task that runs their `main` keeps one code path for the CLI, Airflow and tests.
- **spark-submit** (no service, or `spark.connect: off`; the cluster path): the Spark
  provider's SparkSubmitOperator against the Airflow connection `mtf_spark` (master, deploy
  mode: local[2] by default, a cluster by configuration), with the same Spark conf as
  in-process sessions (store.spark_conf).
Non-Spark steps (training, the gate) run as their own processes through the `mtf` CLI.

Everything a task uses comes from the RUN's profile (the `profile` param), never from the
profile that was current when the DAG file was parsed: the Spark operator builds its Spark
conf, and the landing sensor reads its poke interval and timeout, when the task executes.

Every task receives the day and the config profile from templates, so that a run
triggered from the UI with params (`ds`, `profile`) and a scheduled or backfilled run
(`airflow backfill create --dag-id mtf_daily --from-date ... --to-date ...`, one run per
day, in order since max_active_runs=1) go through the same code path.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.sensors.python import PythonSensor

from core.settings import PROJECT_ROOT
from mtf.alerts import MtfAlert, OnlineRegressionAlert, gate_reasons
from pipeline.config import load_config, profiles
from store.spark_conf import delta_package, spark_conf

SPARK_CONN_ID = os.environ.get("MTF_SPARK_CONN_ID", "mtf_spark")
BIN_DIR = Path(sys.executable).parent

# The run's day: the `ds` param when a run was triggered with one (rerun one chosen day),
# else the logical date's day (scheduled runs and backfills).
DS = "{{ params.ds or ds }}"
PROFILE = "{{ params.profile }}"

log = logging.getLogger(__name__)


def on_task_failure(context) -> None:
    """Failure callback: one clear line in the task log (and the scheduler's log) that says
    what failed, for which day, after how many tries, why, where the log is, and how to
    rerun it safely."""
    ti = context.get("task_instance")
    params = context.get("params") or {}
    ds = params.get("ds") or context.get("ds")
    dag_id, task_id = getattr(ti, "dag_id", "?"), getattr(ti, "task_id", "?")
    msg = (f"mtf-rl task FAILED: dag={dag_id} task={task_id} ds={ds} "
           f"profile={params.get('profile')} try={getattr(ti, 'try_number', '?')}"
           f"/{getattr(ti, 'max_tries', '?')}: {context.get('exception')!r}. "
           f"Log: {getattr(ti, 'log_url', '-')}. Each task rewrites only its ds partition: "
           f"fix the cause, then clear this task (or `mtf airflow -- tasks clear {dag_id} "
           f"-t '^{task_id}$' -s {ds} -e {ds}`) to rerun it and everything downstream.")
    log.error(msg)
    print(msg, file=sys.stderr)


DEFAULT_ARGS = {
    "owner": "mtf-rl",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "depends_on_past": False,
    # the log line, then the alert channels of the run's profile (mtf/alerts.py)
    "on_failure_callback": [on_task_failure, MtfAlert("task_failed")],
}

GATE_REJECTED = 99
"""Exit code of `mtf gate` on a refusal inside the DAG: the gate task ends `skipped` (not
green) and sends a `gate_rejected` alert; publish still runs and records the refusal."""


def publish_deadline():
    """The Deadline Alert of the daily run, when `MTF_PUBLISH_DEADLINE_H` is set (`make
    airflow` sets 30: 06:00 UTC the day after the data day): a run not finished that many
    hours after its logical date sends a `deadline_missed` alert (mtf/alerts.py). Off
    otherwise: `airflow dags test` (what `mtf demo` runs) fails at the end of a run of a DAG
    with a Deadline Alert in Airflow 3.3 ('dict' object has no attribute 'hex' when it looks
    the alert up), and only the scheduler evaluates deadlines anyway."""
    hours = os.environ.get("MTF_PUBLISH_DEADLINE_H", "").strip()
    if not hours:
        return None
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference, SyncCallback

    from mtf.alerts import deadline_missed

    return DeadlineAlert(reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                         interval=dt.timedelta(hours=float(hours)),
                         callback=SyncCallback(deadline_missed), name="policy published")


def mtf_dag(dag_id: str, *, description: str, schedule: str, tags: list[str], doc_md: str,
            deadline=None, **params):
    """The one DAG constructor: owner, retries and failure callback (DEFAULT_ARGS), the UI's
    params (`profile`, `ds` and any extra `params`), one run at a time, no catch-up, tag
    `mtf-rl`, an optional Deadline Alert."""
    import pendulum
    from airflow.sdk import DAG

    return DAG(dag_id=dag_id, description=description, schedule=schedule,
               start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False, max_active_runs=1,
               default_args=DEFAULT_ARGS, params=dag_params(**params),
               tags=["mtf-rl", *tags], doc_md=doc_md, deadline=deadline)


def dag_params(**extra) -> dict:
    """Params shown in the UI's trigger form: the config profile and an optional day."""
    from airflow.sdk import Param

    default_profile = os.environ.get("MTF_PROFILE", "demo")
    return {
        "profile": Param(default_profile, type="string", enum=profiles(),
                         title="Config profile",
                         description="configs/pipeline/<profile>.yaml used by every task"),
        "ds": Param(None, type=["null", "string"], pattern=r"^\d{4}-\d{2}-\d{2}$",
                    title="Day (YYYY-MM-DD)",
                    description="Run this day instead of the logical date's day (reruns); "
                                "for a range use a backfill (one run per day)"),
        **extra,
    }


def job_args(*extra: str) -> list[str]:
    return ["--ds", DS, "--profile", PROFILE, *extra]


class ProfileSparkJobOperator(SparkSubmitOperator):
    """A Spark job of the run's profile (`profile` is templated; the path and the conf are
    chosen when the task executes, not when the DAG file is parsed): a Spark Connect client
    of the warehouse's service when `store.service.connect_url` finds one, else spark-submit
    with the profile's Spark conf."""

    template_fields = (*SparkSubmitOperator.template_fields, "profile")

    def __init__(self, *, profile: str, job: str, **kwargs):
        super().__init__(**kwargs)
        self.profile = profile
        self.job = job

    def execute(self, context):
        from store.service import connect_url

        cfg = load_config(self.profile)
        url = connect_url(cfg)
        if url:
            return run_connect_job(self.job, list(self.application_args or []), url)
        self.conf = {**spark_conf(cfg), **(self.conf or {})}
        return super().execute(context)


def run_connect_job(job: str, argv: list[str], url: str) -> None:
    """Run jobs/<job>.py's `main(argv)` in this process as a client of `url`."""
    import importlib

    log.info("%s %s: Spark Connect client of %s", job, " ".join(argv), url)
    previous = os.environ.get("MTF_SPARK_CONNECT")
    os.environ["MTF_SPARK_CONNECT"] = url  # the job's get_spark attaches to the same server
    try:
        rc = importlib.import_module(f"jobs.{job}").main(argv)
    finally:
        if previous is None:
            os.environ.pop("MTF_SPARK_CONNECT", None)
        else:
            os.environ["MTF_SPARK_CONNECT"] = previous
    if rc:
        raise RuntimeError(f"jobs/{job}.py exited with {rc}")


class ProfileLandingSensor(PythonSensor):
    """The landing sensor with the poke interval and timeout of the run's profile
    (`quality.landing_poke_s`, `quality.landing_timeout_h`), read at each poke."""

    def execute(self, context):
        q = load_config(self.op_kwargs["profile"]).quality
        self.poke_interval = float(q.landing_poke_s)
        self.timeout = q.landing_timeout_h * 3600
        return super().execute(context)


def spark_job(task_id: str, job: str, args: list[str] | None = None, **kwargs):
    """jobs/<job>.py --ds <day> --profile <profile> [args]: a Connect client of the Spark
    service, or spark-submit with the run's profile's conf (ProfileSparkJobOperator)."""
    return ProfileSparkJobOperator(
        task_id=task_id,
        profile=PROFILE,
        job=job,
        application=str(PROJECT_ROOT / "jobs" / f"{job}.py"),
        conn_id=SPARK_CONN_ID,
        packages=delta_package(),
        name=f"mtf-{job}",
        application_args=job_args(*(args or [])),
        env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
        **kwargs,
    )


def logs_landed(ds: str, profile: str) -> bool:
    """The wait_for_logs poke (imports the job module only when it runs, not at parse time)."""
    from jobs.check_logs import logs_landed as poke

    return poke(ds, profile)


def landing_sensor(task_id: str, **kwargs):
    """A PythonSensor (reschedule mode) that pokes `logs_landed` for the day: no Spark, and
    no worker slot held while upstream is late. Poke interval and timeout are the run's
    profile's `quality.landing_poke_s` / `quality.landing_timeout_h`."""
    default = load_config().quality  # shown in the UI until a run renders its profile
    return ProfileLandingSensor(
        task_id=task_id,
        python_callable=logs_landed,
        op_kwargs={"ds": DS, "profile": PROFILE},
        mode="reschedule",
        poke_interval=default.landing_poke_s,
        timeout=default.landing_timeout_h * 3600,
        **kwargs,
    )


def online_metrics_step(task_id: str, **kwargs):
    """The `online_metrics` Spark job, with the `online_regression` alert on success."""
    return spark_job(task_id, "online_metrics", on_success_callback=OnlineRegressionAlert(),
                     **kwargs)


def gate_step(task_id: str, **kwargs):
    """`mtf gate` that ends `skipped` on a refusal, with a `gate_rejected` alert."""
    return cli_step(task_id, f"gate --reject-exit-code {GATE_REJECTED}",
                    skip_on_exit_code=GATE_REJECTED,
                    on_skipped_callback=MtfAlert("gate_rejected", gate_reasons), **kwargs)


def cli_step(task_id: str, subcommand: str, **kwargs):
    """A BashOperator running `mtf <subcommand> --ds <day> --profile <profile>`."""
    from airflow.providers.standard.operators.bash import BashOperator

    mtf = shlex.quote(str(BIN_DIR / "mtf"))
    # the rendered day and profile reach the command as quoted variables, never as shell
    # text (the params are validated by pattern / enum too)
    return BashOperator(
        task_id=task_id,
        bash_command=f'{mtf} {subcommand} --ds "$MTF_RUN_DS" --profile "$MTF_RUN_PROFILE"',
        env={"MTF_RUN_DS": DS, "MTF_RUN_PROFILE": PROFILE},
        cwd=str(PROJECT_ROOT),
        append_env=True,
        **kwargs,
    )
