"""Storage and Spark settings: the `storage` and `spark` sections of a pipeline profile.

The storage library takes any config object that has these two sections (`HasStorage`),
so it does not depend on the pipeline's full config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from core.ds import validate_ds
from core.settings import PROJECT_ROOT, check_identifier


def check_connect(mode: str) -> str:
    """`mode` if it is a valid `spark.connect` (`auto`, `off` or an sc:// URL), else
    ValueError."""
    if mode not in ("auto", "off") and not mode.startswith("sc://"):
        raise ValueError(f"spark.connect must be 'auto', 'off' or an sc://host:port URL, "
                         f"got {mode!r}")
    return mode


@dataclass
class SparkConfig:
    master: str = "local[2]"
    """Spark master for in-process sessions and the Spark service (spark-submit passes its
    own)."""
    connect: str = "auto"
    """Where jobs get their Spark session (env MTF_SPARK_CONNECT overrides): `auto` = the
    warehouse's Spark service (`mtf spark start`, store/service.py) when it runs, else a
    classic session (an in-process JVM, or the one spark-submit started); `off` = always
    classic; `sc://host:port` = that Spark Connect server."""
    shuffle_partitions: int = 4
    """spark.sql.shuffle.partitions: small for one machine, raise on a cluster."""
    driver_memory: str = "4g"
    """Driver memory for local runs."""
    listing_parallelism: int = 8
    """spark.sql.sources.parallelPartitionDiscovery.parallelism: tasks that list a table's
    folders (VACUUM, partition discovery). Spark's default, 10000, made each VACUUM of a tiny
    table take a minute of task scheduling on two cores; raise it on a cluster for tables
    with tens of thousands of folders."""
    driver_java_options: str = ("-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                                "-XX:ReservedCodeCacheSize=256m")
    """Extra driver JVM options. The default (C1 JIT only, serial GC) starts short local jobs
    about a third faster; clear it for long jobs on big data. With C1 alone the JVM reserves
    a 48 MB code cache, which Spark's generated code fills (validate_logs peaked at 47 MB
    with five bronze tables and died with `Out of space in CodeCache` with six); 256 MB is
    reserved address space, committed only as it fills."""
    extra_conf: dict[str, str] = field(default_factory=dict)
    """Any further Spark conf (e.g. object-store credentials providers)."""

    def __post_init__(self) -> None:
        check_connect(self.connect)
        if self.shuffle_partitions < 1 or self.listing_parallelism < 1:
            raise ValueError("spark.shuffle_partitions and spark.listing_parallelism must be "
                             ">= 1")


@dataclass
class StorageConfig:
    warehouse: str = "warehouse"
    """Warehouse root; relative paths are resolved against the project root."""
    metastore_dir: str = ""
    """Embedded Hive metastore directory; empty = <local_dir>/_metastore."""
    local_dir: str = ""
    """Local or mounted (shared) folder for what is written with plain file I/O: model
    artifacts, reports and the embedded metastore. Empty = the warehouse, which must then be
    a local path; required when the warehouse is a URI (s3a://, abfss://, gs://, file://)."""
    database: str = "mtf"
    """Catalog database that holds every table."""

    def __post_init__(self) -> None:
        check_identifier(self.database, "storage.database")  # it is spliced into SQL

    @staticmethod
    def _absolute(path: str) -> str:
        """A local path, relative ones resolved against the project root."""
        p = Path(path)
        return str(p if p.is_absolute() else (PROJECT_ROOT / p).resolve())

    def warehouse_path(self) -> str:
        """The warehouse as Spark sees it: a URI as given, or an absolute local path."""
        w = os.environ.get("MTF_WAREHOUSE", self.warehouse)
        return w if "://" in w else self._absolute(w)

    def is_remote(self) -> bool:
        """True when the warehouse is a URI (tables and landing go through Hadoop/fsspec)."""
        return "://" in self.warehouse_path()

    def local_path(self) -> str:
        d = os.environ.get("MTF_LOCAL_DIR", self.local_dir)
        if d:
            return self._absolute(d)
        if self.is_remote():
            raise ValueError(f"the warehouse is {self.warehouse_path()}: set MTF_LOCAL_DIR (or "
                             "storage.local_dir) to a local or mounted folder for artifacts, "
                             "reports and the metastore")
        return self.warehouse_path()

    def metastore_path(self) -> str:
        m = os.environ.get("MTF_METASTORE_DIR", self.metastore_dir)
        return str(Path(m).resolve()) if m else str(Path(self.local_path()) / "_metastore")

    def landing_path(self) -> str:
        """Where upstream lands the raw daily logs: <landing>/<bronze table>/<ds>/ as Parquet
        with a _MANIFEST.json written last (validate_logs reads them into bronze)."""
        return self.warehouse_path().rstrip("/") + "/_landing"

    def artifacts_path(self) -> str:
        """Where model artifacts live (checkpoints, exported actors, eval/gate records)."""
        return str(Path(self.local_path()) / "_artifacts")

    def alerts_path(self) -> str:
        """The local alert log (<local_dir>/_alerts/alerts.jsonl), one JSON line an alert."""
        return str(Path(self.local_path()) / "_alerts" / "alerts.jsonl")

    def reports_path(self) -> str:
        """Where the nightly HTML reports are written (<local_dir>/_reports/<ds>/)."""
        return str(Path(self.local_path()) / "_reports")

    def report_dir(self, ds: str) -> Path:
        """The folder of day `ds`'s report and A/B summary (<local_dir>/_reports/<ds>)."""
        return Path(self.reports_path()) / validate_ds(ds)

    def mlflow_path(self) -> str:
        """The local MLflow store (<local_dir>/_mlflow/: mlflow.db and artifacts/)."""
        return str(Path(self.local_path()) / "_mlflow")


def is_local_store(uri: str) -> bool:
    """True for a tracking store this process writes itself (sqlite:, file: or a plain
    path): its run artifacts then go under <local_dir>/_mlflow/artifacts. Anything else
    (http, https, databricks) is a server that decides where artifacts go."""
    if "://" in uri:
        return uri.split("://", 1)[0] in ("sqlite", "file")
    return not uri.startswith("databricks")


@dataclass
class TrackingConfig:
    """MLflow tracking and model registry (store/tracking.py), kept next to the Delta tables:
    `policy_registry` decides what serves, MLflow records runs and mirrors the decision as
    the `champion` alias."""

    enabled: bool = True
    """Log every training run to MLflow, register its exported actor and move the
    `champion` alias on publish and rollback; off = nothing is logged."""
    uri: str = ""
    """Tracking (and registry) URI (env MTF_MLFLOW_URI overrides): empty = the local SQLite
    store sqlite:///<local_dir>/_mlflow/mlflow.db with artifacts in
    <local_dir>/_mlflow/artifacts; http(s)://host:port = a tracking server."""
    experiment: str = "mtf-rl"
    """Experiment that holds the training runs."""
    registered_model: str = "mtf-fusion-policy"
    """Registered model whose versions are the exported actors (one per model_version)."""
    strict: bool = False
    """A tracking failure fails the job (after its Delta writes, which stay done) instead
    of a logged warning."""

    def __post_init__(self) -> None:
        for name in ("experiment", "registered_model"):
            value = getattr(self, name)
            if not value.strip() or "'" in value:
                raise ValueError(f"tracking.{name} must be a non-empty name without quotes, "
                                 f"got {value!r}")

    def tracking_uri(self, storage: StorageConfig) -> str:
        """The configured URI (env MTF_MLFLOW_URI first), or the local SQLite store."""
        uri = os.environ.get("MTF_MLFLOW_URI", self.uri)
        if uri:
            return uri
        return "sqlite:///" + str(Path(storage.mlflow_path()) / "mlflow.db")

    def artifact_location(self, storage: StorageConfig) -> str | None:
        """Where a new experiment keeps its run artifacts: <local_dir>/_mlflow/artifacts for
        a local store, None (the server's default) for a tracking server."""
        if not is_local_store(self.tracking_uri(storage)):
            return None
        return (Path(storage.mlflow_path()) / "artifacts").as_uri()


class HasStorage(Protocol):
    """What the storage library reads from a config: its `storage` and `spark` sections."""

    storage: StorageConfig
    spark: SparkConfig
