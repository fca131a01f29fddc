"""Operator factories for the DAGs in dags/ (wiring only; no business logic).

Imported at DAG-parse time, so it stays light: no Spark, torch or pandas imports.
Spark jobs run through the Spark provider's SparkSubmitOperator against the Airflow
connection `mtf_spark` (master, deploy mode: local[2] by default, a cluster by
configuration); the same Spark conf as in-process sessions comes from mtf.spark_conf.
Non-Spark steps (training, the gate) run as their own processes through the `mtf` CLI.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shlex
import sys
from pathlib import Path

from mtf.config import PROJECT_ROOT, load_config
from mtf.spark_conf import delta_package, spark_conf

SPARK_CONN_ID = os.environ.get("MTF_SPARK_CONN_ID", "mtf_spark")
BIN_DIR = Path(sys.executable).parent

DEFAULT_ARGS = {
    "owner": "mtf-rl",
    "retries": 2,
    "retry_delay": dt.timedelta(seconds=30),
    "depends_on_past": False,
}

log = logging.getLogger(__name__)


def on_task_failure(context) -> None:
    """Failure callback: one clear line in the task log (and the scheduler's log)."""
    ti = context.get("task_instance")
    msg = (f"mtf-rl task FAILED: dag={getattr(ti, 'dag_id', '?')} "
           f"task={getattr(ti, 'task_id', '?')} ds={context.get('ds')} "
           f"try={getattr(ti, 'try_number', '?')}: "
           f"{context.get('exception')!r}")
    log.error(msg)
    print(msg, file=sys.stderr)


def spark_job(task_id: str, job: str, **kwargs):
    """A SparkSubmitOperator running jobs/<job>.py --ds {{ ds }}."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    cfg = load_config()
    return SparkSubmitOperator(
        task_id=task_id,
        application=str(PROJECT_ROOT / "jobs" / f"{job}.py"),
        conn_id=SPARK_CONN_ID,
        conf=spark_conf(cfg),
        packages=delta_package(),
        name=f"mtf-{job}",
        application_args=["--ds", "{{ ds }}"],
        env_vars={"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable},
        on_failure_callback=on_task_failure,
        **kwargs,
    )


def cli_step(task_id: str, subcommand: str, **kwargs):
    """A BashOperator running `mtf <subcommand> --ds {{ ds }}` as its own process."""
    from airflow.providers.standard.operators.bash import BashOperator

    mtf = shlex.quote(str(BIN_DIR / "mtf"))
    return BashOperator(
        task_id=task_id,
        bash_command=f"{mtf} {subcommand} --ds {{{{ ds }}}}",
        cwd=str(PROJECT_ROOT),
        append_env=True,
        on_failure_callback=on_task_failure,
        **kwargs,
    )
