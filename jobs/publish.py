"""Job `publish`: record the gate's decision and, when it passed, publish the policy.

Order matters (write, audit, publish): the artifact already exists and its checksum is
verified here; then `offline_metrics` (always, for both candidate and current), then
`fusion_weights` (the weights the policy that serves tomorrow gives today's pairs, plus a
per-user fallback), and LAST the registry row. A crash before the registry MERGE leaves
no "published" row; a rerun replaces the same partitions and MERGEs the same row.

After the registry MERGE, MLflow mirrors it (`mirror_registry`, store/tracking.py): the
candidate's registered version is tagged `status=published` or `rejected`, and the
`champion` alias is put on the version of the policy that serves from now on (the newest
published row of policy_registry: the candidate when it passed and is the newest day). A
tracking failure is a warning (`tracking.strict` fails the job; the Delta writes stay);
a rerun sets the same tags and alias.

    spark-submit jobs/publish.py --ds 2026-01-03
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core import schema as S
from core.artifact import Artifact, model_version
from core.fusion import to_physical
from pipeline.config import PipelineConfig
from pipeline.entry import spark_job_main
from pipeline.provenance import artifact_dir
from store.registry import PolicyRef, current_policy, serving_policy, upsert_registry
from store.tables import ensure_tables, read_partition, write_partition
from store.tracking import guarded, open_tracker

log = logging.getLogger("jobs.publish")
D, A = S.PAIR_STATE_DIM, S.ACTION_DIM
PHYS_COLS = [f"power_{o}" for o in S.OBJECTIVES] + [f"bias_{o}" for o in S.OBJECTIVES]


def offline_metric_rows(spark: SparkSession, rec: dict) -> DataFrame:
    rows = []
    for role in ("candidate", "current"):
        part = rec[role]
        for metric, m in part["metrics"].items():
            rows.append((rec["ds"], part["model_version"], part["algo"], role, metric,
                         _f(m.get("value")), _f(m.get("ci_low")), _f(m.get("ci_high"))))
    for metric, v in sorted(rec.get("train", {}).items()):
        rows.append((rec["ds"], rec["model_version"], rec["algo"], "candidate", metric, _f(v),
                     None, None))
    return spark.createDataFrame(rows, "ds string, model_version string, algo string, "
                                       "role string, metric string, value double, "
                                       "ci_low double, ci_high double")


def _f(v: object) -> float | None:
    return None if v is None else float(v)


def _score_partitions(ref: PolicyRef):
    """mapInPandas body: the serving actor's action for each (user, item) pair."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import numpy as np

        from store.registry import load_policy

        policy = load_policy(ref)  # checksum verified on load, once per partition
        for pdf in batches:
            if pdf.empty:
                continue
            states = np.stack(pdf["state"].to_numpy()).astype(np.float32)
            acts = policy.act(np.zeros((len(pdf), S.USER_STATE_DIM), np.float32),
                              states[:, None, :])
            acts = np.asarray(acts, dtype=np.float64).reshape(len(pdf), -1)[:, :A]
            phys = to_physical(acts)
            out = pd.DataFrame({"user_id": pdf["user_id"].to_numpy(),
                                "item_id": pdf["item_id"].to_numpy()})
            out["action"] = list(acts.astype(np.float32))
            for i, c in enumerate(PHYS_COLS):
                out[c] = phys[:, i]
            yield out

    return score


def build_fusion_weights(enhanced: DataFrame, ref: PolicyRef, ds: str) -> DataFrame:
    pairs = (enhanced.select("user_id", "pair_state", F.posexplode("item_ids").alias("pos",
                                                                                     "item_id"))
             .where("item_id >= 0")
             .select("user_id", "item_id",
                     F.slice("pair_state", F.col("pos") * D + 1, F.lit(D)).alias("state")))
    out_schema = T.StructType(
        [T.StructField("user_id", T.LongType()), T.StructField("item_id", T.LongType()),
         T.StructField("action", T.ArrayType(T.FloatType()))]
        + [T.StructField(c, T.DoubleType()) for c in PHYS_COLS])
    per_pair = pairs.mapInPandas(_score_partitions(ref), out_schema)
    per_pair = per_pair.dropDuplicates(["user_id", "item_id"])
    fallback = (per_pair.groupBy("user_id").agg(
        F.array(*[F.avg(F.col("action")[i]) for i in range(A)]).cast("array<float>")
        .alias("action"), *[F.avg(c).alias(c) for c in PHYS_COLS])
        .withColumn("item_id", F.lit(-1).cast("bigint")))
    cols = ["user_id", "item_id", "action", *PHYS_COLS]
    return (per_pair.select(*cols).unionByName(fallback.select(*cols))
            .withColumn("ds", F.lit(ds)).withColumn("model_version", F.lit(ref.model_version)))


def mirror_registry(spark: SparkSession, cfg: PipelineConfig, statuses: dict[str, str],
                    what: str) -> str | None:
    """MLflow after a policy_registry change: tag the registered versions of `statuses`
    (model_version -> status) and put `champion` on the version of the policy that serves
    from now on (removed while the fixed weights serve). Returns the champion's version
    (None: none, tracking off, or it failed with a warning)."""
    tracker = open_tracker(cfg.tracking, cfg.storage)
    if tracker is None:
        return None

    def sync() -> str | None:
        for model_version_, status in statuses.items():
            tracker.set_status(model_version_, status)
        serving = current_policy(spark, cfg.storage.database)
        champion = tracker.set_champion(None if serving.is_fixed else serving.model_version)
        log.info("MLflow %s: %s; champion = %s", tracker.model,
                 ", ".join(f"{v} {s}" for v, s in statuses.items()),
                 f"v{champion} ({serving.model_version})" if champion else "none")
        return champion

    return guarded(what, sync, strict=cfg.tracking.strict)


def run(spark: SparkSession, cfg: PipelineConfig, ds: str) -> dict:
    from model.export import file_sha256

    db = cfg.storage.database
    ensure_tables(spark, db)
    version = model_version(cfg.algo, ds)
    art = Artifact(artifact_dir(cfg, ds))
    meta = json.loads(art.meta.read_text())
    rec = json.loads(art.eval.read_text())
    gate = json.loads(art.gate.read_text())
    actor = art.actor
    sha = file_sha256(actor)
    publish = bool(gate["publish"])
    reasons = list(gate.get("reasons", []))
    if sha != meta["actor_sha256"]:
        publish = False
        reasons.append(f"artifact checksum {sha} != recorded {meta['actor_sha256']}")
    n_metrics = write_partition(offline_metric_rows(spark, rec), db, "offline_metrics", ds)
    candidate = PolicyRef(version, cfg.algo, "pair", str(actor), sha)
    serving_next = candidate if publish else serving_policy(spark, db, ds)
    n_weights = write_partition(
        build_fusion_weights(read_partition(spark, db, "enhanced_state", ds), serving_next, ds),
        db, "fusion_weights", ds)
    upsert_registry(spark, db, {
        "model_version": version, "algo": cfg.algo, "ds": ds, "artifact_uri": str(actor),
        "artifact_sha256": sha, "level": "pair",
        "config_json": json.dumps(meta["config"], sort_keys=True, default=str),
        "seed": int(meta["seed"]), "git_sha": meta["git_sha"],
        "data_versions": json.dumps(meta["data_versions"], sort_keys=True),
        "status": "published" if publish else "rejected",
        "reason": "; ".join(reasons) if reasons else None, "updated_at_ds": ds})
    log.info("%s %s (offline_metrics %d rows, fusion_weights %d rows from %s)",
             "PUBLISHED" if publish else "REJECTED", version, n_metrics, n_weights,
             serving_next.model_version)
    mirror_registry(spark, cfg, {version: "published" if publish else "rejected"}, "publish")
    return {"published": publish, "reasons": reasons, "fusion_weights": n_weights}


def main(argv: Sequence[str] | None = None) -> int:
    return spark_job_main("publish", __doc__, argv,
                          lambda spark, cfg, a: run(spark, cfg, a.ds))


if __name__ == "__main__":
    raise SystemExit(main())
