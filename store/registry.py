"""The policy registry: which policy serves a day, loading it safely, and writing its rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pyspark.sql import SparkSession

from core.ds import validate_ds
from core.policy import FixedWeightsPolicy, Policy, TorchScriptPolicy
from store.tables import qualified, retry_on_conflict, sql_string

FIXED_VERSION = "fixed-v0"


@dataclass(frozen=True)
class PolicyRef:
    """A servable policy: the fixed default weights or a published exported actor."""

    model_version: str
    algo: str
    level: str  # "fixed", "user" or "pair"
    artifact_uri: str | None = None
    artifact_sha256: str | None = None

    @property
    def is_fixed(self) -> bool:
        return self.level == "fixed"


FIXED_POLICY = PolicyRef(FIXED_VERSION, "fixed", "fixed")


def serving_policy(spark: SparkSession, db: str, ds: str) -> PolicyRef:
    """The policy that serves day `ds`: the newest published policy trained on a day
    before `ds` (yesterday's run publishes today's policy), else the fixed weights."""
    validate_ds(ds)
    return _newest_published(spark, db, f"AND ds < '{ds}' ")


def current_policy(spark: SparkSession, db: str) -> PolicyRef:
    """The policy that serves from now on: the newest published policy of any day, else the
    fixed weights (MLflow's `champion` alias follows it, store/tracking.py)."""
    return _newest_published(spark, db, "")


def _newest_published(spark: SparkSession, db: str, where: str) -> PolicyRef:
    return _newest(spark, db, f"status = 'published' {where}") or FIXED_POLICY


def _newest(spark: SparkSession, db: str, where: str) -> PolicyRef | None:
    """The newest registry row (by training day, then version) matching `where`."""
    rows = spark.sql(
        f"SELECT model_version, algo, level, artifact_uri, artifact_sha256 "
        f"FROM {qualified(db, 'policy_registry')} WHERE {where} "
        f"ORDER BY ds DESC, model_version DESC LIMIT 1").collect()
    if not rows:
        return None
    r = rows[0]
    return PolicyRef(r["model_version"], r["algo"], r["level"], r["artifact_uri"],
                     r["artifact_sha256"])


def canary_policy(spark: SparkSession, db: str, ds: str, current: PolicyRef
                  ) -> PolicyRef | None:
    """The canary of day `ds`: the newest candidate the gate did not publish (`rejected`,
    or still `candidate`), trained on a day before `ds` and after the current policy's,
    with an exported actor (a failed training has none); None when there is none (its arm
    is then served by the current policy)."""
    validate_ds(ds)
    after = ""
    if not current.is_fixed:
        after = (f" AND ds > (SELECT max(ds) FROM {qualified(db, 'policy_registry')} "
                 f"WHERE model_version = {sql_string(current.model_version)})")
    return _newest(spark, db, f"status IN ('rejected', 'candidate') AND ds < '{ds}' "
                              f"AND coalesce(artifact_uri, '') <> ''{after}")


def load_policy(ref: PolicyRef) -> Policy:
    """A `Policy` for `ref`; the artifact's checksum is verified on load."""
    if ref.is_fixed:
        return FixedWeightsPolicy(version=ref.model_version)
    return TorchScriptPolicy(ref.artifact_uri, level=ref.level, version=ref.model_version,
                             expected_sha256=ref.artifact_sha256)


def upsert_registry(spark: SparkSession, db: str, row: dict, keep_published: bool = False
                    ) -> None:
    """MERGE one registry row on its model_version (a rerun replaces its own row). With
    `keep_published`, a row already published is left as it is (a failed rerun of a day
    does not take its published policy out of service: that is what rollback is for)."""
    table = qualified(db, "policy_registry")
    src = spark.createDataFrame([row], spark.table(table).schema)
    view = f"_registry_row_{uuid.uuid4().hex}"
    src.createOrReplaceTempView(view)  # SQL MERGE: the same on a classic and a Connect session
    condition = " AND t.status <> 'published'" if keep_published else ""
    try:
        retry_on_conflict(lambda: spark.sql(
            f"MERGE INTO {table} t USING {view} s ON t.model_version = s.model_version "
            f"WHEN MATCHED{condition} THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"),
            f"merge {table} {row['model_version']}")
    finally:
        spark.catalog.dropTempView(view)
