"""Storage and Spark settings: the `storage` and `spark` sections of a pipeline profile.

The storage library takes any config object that has these two sections (`HasStorage`),
so it does not depend on the pipeline's full config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

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


class HasStorage(Protocol):
    """What the storage library reads from a config: its `storage` and `spark` sections."""

    storage: StorageConfig
    spark: SparkConfig
