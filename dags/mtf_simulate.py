"""
### mtf_simulate: play production for one day (demo mode)

Serves the currently published fusion policy (or the fixed default weights) to the
seeded user simulator with box exploration, and lands the day's raw logs
(`raw_users`, `raw_items`, `raw_requests`, `raw_exposures`, `raw_feedback`,
`raw_candidates`: the top `sim.logged_candidates` candidates of each request by logged
score, landed empty when that is 0) for `mtf_daily`'s `wait_for_logs` / `validate_logs`.
In production, upstream logging replaces this DAG.

**Params**: `profile` (configs/pipeline/<profile>.yaml) and `ds` (simulate that day instead of the
logical date's day). Days depend on each other (a day is served by the policy published
the day before), so simulate a range with a backfill, which runs one day at a time.
"""

from __future__ import annotations

from mtf.airflow_tasks import mtf_dag, spark_job
from mtf.assets import io

with mtf_dag(
    "mtf_simulate",
    description="Simulated production logs for the demo",
    schedule="@daily",
    tags=["simulator", "spark", "delta"],
    doc_md=__doc__,
) as dag:
    spark_job("simulate", "simulate",
              doc_md="Spark + numpy simulator: serves the published policy to simulated "
                     "users for the day and lands the six raw log tables.",
              **io("simulate"))
