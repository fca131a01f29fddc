"""
### mtf_daily: retrain, evaluate, gate and publish the fusion policy for one day

`wait_for_logs -> build_enhanced_state -> train -> evaluate -> gate -> publish -> online_metrics`

* **wait_for_logs** fails (and is retried) until every bronze table has the day.
* **build_enhanced_state** (Spark) turns the day's logs into list-level training rows.
* **train** fits EnhancedRL from a pinned Delta snapshot through Petastorm (own process).
* **evaluate** (Spark) scores candidate and current policy: NCIS, MTF-GAUC, simulator A/B.
* **gate** refuses non-finite / out-of-range / non-parity / regressing candidates.
* **publish** (Spark) records the decision; a passing policy serves from the next day.
* **online_metrics** (Spark) UVC / UDT of the day per serving policy, from the logs.

Each task rewrites only its `ds` partition(s): clear and rerun any task or day safely.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from mtf.airflow_tasks import DEFAULT_ARGS, cli_step, spark_job

with DAG(
    dag_id="mtf_daily",
    description="Daily EnhancedRL fusion-policy retraining",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mtf-rl", "training", "spark", "delta"],
    doc_md=__doc__,
) as dag:
    wait_for_logs = spark_job("wait_for_logs", "check_logs")
    build = spark_job("build_enhanced_state", "build_enhanced_state")
    train = cli_step("train", "train --no-progress")
    evaluate = spark_job("evaluate", "evaluate")
    gate = cli_step("gate", "gate")
    publish = spark_job("publish", "publish")
    online = spark_job("online_metrics", "online_metrics")
    wait_for_logs >> build >> train >> evaluate >> gate >> publish >> online
