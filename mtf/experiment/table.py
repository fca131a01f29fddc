"""The experiment's rows in Delta: `experiment_results` (DDL in sql/ddl), one partition per
`ds`, replaced per (ds, run_id) so a rerun of a run never touches another run's rows.

`store.tables` is imported inside `write_table`: it loads pyspark, which
`import mtf.experiment` does not.
"""

from __future__ import annotations

import math
from typing import Any

from core.ds import validate_ds
from mtf.experiment.config import RUN_ID_RE

TABLE = "experiment_results"


def write_table(spark, db: str, ds: str, run_id: str, rows: list[dict[str, Any]]) -> int:
    """Replace this run's rows (ds, run_id) of experiment_results in one Delta commit."""
    from store.tables import ensure_tables, qualified, table_location

    validate_ds(ds)
    if not RUN_ID_RE.match(run_id):
        raise ValueError(f"bad run_id {run_id!r}")
    ensure_tables(spark, db)
    target = spark.table(qualified(db, TABLE))
    recs = [{**r, "ds": ds, "run_id": run_id,
             "ci_low": None if r["ci_low"] is None or math.isnan(r["ci_low"]) else r["ci_low"],
             "ci_high": None if r["ci_high"] is None or math.isnan(r["ci_high"])
             else r["ci_high"]} for r in rows]
    df = spark.createDataFrame(recs, schema=target.schema).select(*target.columns)
    (df.write.format("delta").mode("overwrite")
       .option("replaceWhere", f"ds = '{ds}' AND run_id = '{run_id}'")
       .save(table_location(spark, db, TABLE)))
    return len(recs)
