"""
### mtf_simulate: play production for one day (demo mode)

Serves the currently published fusion policy (or the fixed default weights) to the
seeded user simulator with box exploration, and writes the day's bronze logs
(`raw_users`, `raw_items`, `raw_requests`, `raw_exposures`, `raw_feedback`).
In production, upstream logging replaces this DAG.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from mtf.airflow_tasks import DEFAULT_ARGS, spark_job

with DAG(
    dag_id="mtf_simulate",
    description="Simulated production logs for the demo",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["mtf-rl", "simulator", "spark", "delta"],
    doc_md=__doc__,
) as dag:
    spark_job("simulate", "simulate")
