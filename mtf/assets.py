"""The Airflow Assets of the project: every Delta table (`delta://mtf/<table>`), each
landed raw log (`landing://mtf/<raw table>`) and the model artifacts. Each task declares
what it reads (inlets) and writes (outlets), so Airflow's asset graph shows the flow from
the landed logs to `fusion_weights` and the metric tables, and each table's page lists the
runs that updated it.

Light at DAG-parse time: names only (store.tables imports no Spark).
"""

from __future__ import annotations

from airflow.sdk import Asset

from store.tables import BRONZE, GOLD, QUARANTINE, SILVER

_GROUP = {**{t: "bronze" for t in BRONZE}, **{t: "quarantine" for t in QUARANTINE},
          **{t: "silver" for t in SILVER}, **{t: "gold" for t in GOLD}}


def table(name: str) -> Asset:
    """The Delta table `mtf.<name>` (the catalog's database is a deployment setting; the
    asset names the logical table)."""
    return Asset(name=f"mtf.{name}", uri=f"delta://mtf/{name}", group=_GROUP[name])


def tables(*names: str) -> list[Asset]:
    return [table(n) for n in names]


def landed(name: str) -> Asset:
    """A raw log as upstream lands it (`<warehouse>/_landing/<name>/<ds>/`)."""
    if name not in BRONZE:
        raise KeyError(f"not a raw log: {name}")
    return Asset(name=f"landing.{name}", uri=f"landing://mtf/{name}", group="landing")


LANDED = [landed(t) for t in BRONZE]
ARTIFACTS = Asset(name="mtf.model_artifacts", uri="artifacts://mtf/candidates", group="model")
"""The day's candidate folder: checkpoint, exported actor, eval.json, gate.json."""

# what each task of the DAGs reads and writes
IO: dict[str, tuple[list[Asset], list[Asset]]] = {
    "simulate": (tables("policy_registry"), LANDED),
    "wait_for_logs": (LANDED, []),
    "validate_logs": (LANDED, tables(*BRONZE, *QUARANTINE, "dq_metrics")),
    "build_enhanced_state": (tables(*BRONZE), tables(*SILVER)),
    "train": (tables(*SILVER), [ARTIFACTS]),
    "evaluate": ([*tables(*SILVER, "policy_registry"), ARTIFACTS], [ARTIFACTS]),
    "gate": ([ARTIFACTS], [ARTIFACTS]),
    "publish": ([*tables("enhanced_state", "policy_registry"), ARTIFACTS],
                tables("offline_metrics", "fusion_weights", "policy_registry")),
    "online_metrics": (tables("raw_requests", "raw_feedback"), tables("online_metrics")),
    "report": (tables("offline_metrics", "online_metrics", "policy_registry",
                      "fusion_weights"), []),
    "optimize_vacuum": (tables(*BRONZE, *QUARANTINE, *SILVER, *GOLD),
                        tables(*BRONZE, *QUARANTINE, *SILVER, *GOLD)),
}


def io(task_id: str) -> dict[str, list[Asset]]:
    """`inlets` and `outlets` keyword arguments of a task."""
    inlets, outlets = IO[task_id]
    return {"inlets": inlets, "outlets": outlets}
