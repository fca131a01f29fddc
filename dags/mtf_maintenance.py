"""
### mtf_maintenance: compact and clean the Delta tables (weekly)

Daily `replaceWhere` writes leave many small files per partition and, once replaced,
files that only old table versions reference. This DAG runs `jobs/maintenance.py`:

* **OPTIMIZE** (bin-packing) of the recent `ds` partitions of every partitioned table,
  so that readers (the trainer's Petastorm reader, analysts) open fewer, larger files;
* **VACUUM** of files no longer referenced by any table version younger than the
  retention. The retention is derived from `data.train_window_days` (plus a safety
  margin), so every snapshot a model in the training window was trained from can still
  be read back (time travel) and its training reproduced.

**Params**: `profile`, `ds` (the day the maintenance is for; default the logical date's
day) and `days` (how many days of partitions, ending at `ds`, to OPTIMIZE).
"""

from __future__ import annotations

from airflow.sdk import Param

from mtf.airflow_tasks import mtf_dag, spark_job
from mtf.assets import io

with mtf_dag(
    "mtf_maintenance",
    description="OPTIMIZE and VACUUM the Delta tables",
    schedule="@weekly",
    tags=["maintenance", "spark", "delta"],
    doc_md=__doc__,
    days=Param(7, type="integer", minimum=1, title="Days to OPTIMIZE",
               description="partitions ds-days+1 .. ds"),
) as dag:
    spark_job("optimize_vacuum", "maintenance", args=["--days", "{{ params.days }}"],
              doc_md="OPTIMIZE the recent partitions, then VACUUM with a retention that keeps "
                     "the training window's snapshots readable.",
              **io("optimize_vacuum"))
