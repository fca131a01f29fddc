"""
### mtf_daily: retrain, evaluate, gate and publish the fusion policy for one day

The tasks run one after the other, in the order of this table:

| group | tasks | what |
|---|---|---|
| `ingest` | wait_for_logs, validate_logs | the day's logs have landed and pass the data rules |
| `learn` | build_enhanced_state, train | training rows, then EnhancedRL from a pinned snapshot |
| `release` | evaluate, gate, publish | offline evaluation, the gate, publication |
| `observe` | online_metrics, report | what users did, and the nightly report |

**Params** (Trigger DAG w/ config): `profile` (configs/pipeline/<profile>.yaml for every task) and
`ds` (run that day instead of the logical date's day). For a range of days use a backfill:
`mtf airflow -- backfill create --dag-id mtf_daily --from-date 2026-01-01 --to-date 2026-01-03`
(one run per day, in date order: `max_active_runs=1`).

**On failure** a task retries twice (30 s apart), then logs one line `mtf-rl task FAILED: ...`
with the day, the cause and the command to rerun it, and sends a `task_failed` alert (the
profile's `alerts`: `<local_dir>/_alerts/alerts.jsonl`, e-mail by configuration). A
candidate the gate rejects leaves the `gate` task **skipped** and sends `gate_rejected`. Under
the scheduler (`make airflow`), a run not finished 30 h after its logical date (06:00 UTC
the next day; `MTF_PUBLISH_DEADLINE_H`) sends `deadline_missed` (a Deadline Alert). An A/B
arm worse than the holdout beyond `ab.regression_threshold` sends `online_regression`
(`online_metrics` stays green).
Each task rewrites only its `ds` partition(s): clear and rerun any task or day safely.

**Lineage**: every task declares the Delta tables (and landed logs, model artifacts) it
reads and writes as Airflow Assets (`mtf/assets.py`): the Assets page shows the flow from
`landing.*` to `mtf.fusion_weights` and the metric tables.

**Analysts**: the views `mtf.v_latest_policy`, `mtf.v_offline_metrics_daily`,
`mtf.v_online_metrics_daily`, `mtf.v_policy_comparison`, `mtf.v_online_ab` (`make sql`), and
the report at
`<warehouse>/_reports/<ds>/report.html` (path in the `report` task's log).
"""

from __future__ import annotations

from airflow.sdk import TaskGroup

from mtf.airflow_tasks import (
    cli_step,
    gate_step,
    landing_sensor,
    mtf_dag,
    online_metrics_step,
    publish_deadline,
    spark_job,
)
from mtf.assets import io

DOCS = {
    "wait_for_logs": "Sensor (reschedule mode, no Spark): waits until every raw log of the "
                     "day has landed (a `_MANIFEST.json` per table); fails after "
                     "`quality.landing_timeout_h`.",
    "validate_logs": "Checks the day's logs against declared rules: hard rules fail the run, "
                     "rows breaking soft rules go to `<table>_quarantine`; counts land in "
                     "`dq_metrics`. Writes the bronze tables.",
    "build_enhanced_state": "Spark: the day's bronze logs -> `enhanced_state` (one row per "
                            "request list, pair-level states, next list, rewards) and "
                            "`user_state`.",
    "train": "Fits EnhancedRL on the last `data.train_window_days` of `enhanced_state`, read "
             "through Petastorm from a pinned Delta version; writes the artifact folder "
             "(checkpoint, exported actor, `train_metrics.jsonl`).",
    "evaluate": "Spark: NCIS (bootstrap CI), MTF-GAUC and the simulator's ground-truth A/B of "
                "the candidate against the serving policy.",
    "gate": "Refuses non-finite, out-of-range, non-parity or regressing candidates "
            "(`gate.json` in the artifact folder says why). A refusal ends this task "
            "**skipped** (not green) and sends a `gate_rejected` alert; publish then "
            "records the refusal and the current policy keeps serving.",
    "publish": "Spark: `offline_metrics`, `fusion_weights`, and last the `policy_registry` "
               "row; a published policy serves from the next day.",
    "online_metrics": "Spark: UVC / UDT of the day per A/B arm and serving policy, from the "
                      "logs, with CIs and the lift against the holdout; alerts "
                      "`online_regression` when an arm is worse beyond the threshold.",
    "report": "Spark + matplotlib: `<warehouse>/_reports/<ds>/report.html` with training "
              "curves, metric history, weight distributions and online metrics; the path "
              "is in this task's log.",
}

with mtf_dag(
    "mtf_daily",
    description="Daily EnhancedRL fusion-policy retraining",
    schedule="@daily",
    tags=["training", "spark", "delta"],
    doc_md=__doc__,
    deadline=publish_deadline(),
) as dag:
    with TaskGroup("ingest", prefix_group_id=False, tooltip="logs landed and validated"):
        wait_for_logs = landing_sensor("wait_for_logs", doc_md=DOCS["wait_for_logs"],
                                       **io("wait_for_logs"))
        validate = spark_job("validate_logs", "validate_logs", doc_md=DOCS["validate_logs"],
                             **io("validate_logs"))
    with TaskGroup("learn", prefix_group_id=False, tooltip="training rows and training"):
        build = spark_job("build_enhanced_state", "build_enhanced_state",
                          doc_md=DOCS["build_enhanced_state"], **io("build_enhanced_state"))
        train = cli_step("train", "train --no-progress", doc_md=DOCS["train"], **io("train"))
    with TaskGroup("release", prefix_group_id=False, tooltip="evaluate, gate, publish"):
        evaluate = spark_job("evaluate", "evaluate", doc_md=DOCS["evaluate"], **io("evaluate"))
        gate = gate_step("gate", doc_md=DOCS["gate"], **io("gate"))
        # publish records a refusal too (the gate task is then `skipped`, not failed)
        publish = spark_job("publish", "publish", doc_md=DOCS["publish"],
                            trigger_rule="none_failed", **io("publish"))
    with TaskGroup("observe", prefix_group_id=False, tooltip="online metrics and report"):
        online = online_metrics_step("online_metrics", doc_md=DOCS["online_metrics"],
                                     **io("online_metrics"))
        report = spark_job("report", "report", doc_md=DOCS["report"], **io("report"))
    (wait_for_logs >> validate >> build >> train >> evaluate >> gate >> publish >> online
     >> report)
