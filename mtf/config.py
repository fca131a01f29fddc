"""One config loader: typed dataclasses, YAML profiles, environment and CLI overrides.

Profiles live in `configs/<profile>.yaml`. The profile is chosen by `--profile` or the
`MTF_PROFILE` environment variable (default `demo`). Any field can be overridden with
`--set section.field=value` (value parsed as YAML). Deployment settings also come from the
environment, so that Airflow connections / cluster settings never live in the repository:

    MTF_WAREHOUSE      warehouse root (local path; object-store URI on a cluster)
    MTF_METASTORE_DIR  where the embedded (Derby) Hive metastore lives (local only)
    MTF_LOCAL_DIR      local or mounted folder for artifacts and reports (required when the
                       warehouse is an object-store URI)
    MTF_SPARK_MASTER   Spark master for jobs started outside spark-submit

The resolved config is saved next to every artifact (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from model.config import EnhancedRLConfig
from sim.config import SimConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "configs"


@dataclass
class SparkConfig:
    master: str = "local[2]"
    """Spark master for in-process sessions (spark-submit passes its own)."""
    shuffle_partitions: int = 4
    """spark.sql.shuffle.partitions: small for one machine, raise on a cluster."""
    driver_memory: str = "4g"
    """Driver memory for local runs."""
    listing_parallelism: int = 8
    """spark.sql.sources.parallelPartitionDiscovery.parallelism: tasks that list a table's
    folders (VACUUM, partition discovery). Spark's default, 10000, made each VACUUM of a tiny
    table take a minute of task scheduling on two cores; raise it on a cluster for tables
    with tens of thousands of folders."""
    driver_java_options: str = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
    """Extra driver JVM options. The default (C1 JIT only, serial GC) starts short local jobs
    about a third faster; clear it for long jobs on big data."""
    extra_conf: dict[str, str] = field(default_factory=dict)
    """Any further Spark conf (e.g. object-store credentials providers)."""


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
        with a _SUCCESS marker written last (validate_logs reads them into bronze)."""
        return self.warehouse_path().rstrip("/") + "/_landing"

    def artifacts_path(self) -> str:
        """Where model artifacts live (checkpoints, exported actors, eval/gate records)."""
        return str(Path(self.local_path()) / "_artifacts")

    def reports_path(self) -> str:
        """Where the nightly HTML reports are written (<local_dir>/_reports/<ds>/)."""
        return str(Path(self.local_path()) / "_reports")


@dataclass
class RewardConfig:
    """Pair reward r = sum_i w_i v_i (ALGORITHM.md section 2), split over two critic sets."""

    w_watch: float = 1.0
    """Weight of watch time, per minute watched (critic set 0)."""
    w_valid: float = 1.0
    """Weight of a valid consumption (watch > 10 s) (critic set 1)."""
    w_like: float = 1.0
    """Weight of a like (critic set 1)."""
    w_share: float = 2.0
    """Weight of a share (critic set 1)."""
    w_collect: float = 1.5
    """Weight of a collect (critic set 1)."""


@dataclass
class DataConfig:
    train_window_days: int = 3
    """Days of enhanced_state (ending at ds) the trainer reads."""
    eval_fraction: float = 0.2
    """Share of sessions held out (by a stable hash of session_id) for evaluation."""
    shuffle_seed: int = 0
    """Seed of Petastorm's row-group shuffle (combined with the epoch number)."""


@dataclass
class QualityConfig:
    """Rules of validate_logs (jobs/validate_logs.py) that need a number."""

    max_quarantine_fraction: float = 0.05
    """Hard rule: fail the run when more than this share of a table's landed rows (or of
    sessions) is quarantined: that is an upstream breakage, not a few bad rows."""
    max_watch_time_s: float = 4 * 3600.0
    """Soft rule: a watch time above this (or NaN/inf) is absurd."""
    valid_watch_s: float = 10.0
    """`valid` must equal (watch_time_s > this) (mtf.schema.VALID_WATCH_SECONDS)."""
    landing_poke_s: int = 300
    """Airflow's wait_for_logs sensor checks the landing markers this often (reschedule mode:
    no worker slot is held between checks)."""
    landing_timeout_h: float = 12.0
    """The sensor fails (and the day with it) when the logs have not landed after this long."""


@dataclass
class EvalConfig:
    sigmas: tuple[float, ...] = (0.05, 0.1)
    """NCIS Gaussian kernel widths of the evaluated policy (normalised action units)."""
    ncis_clip: float = 10.0
    """c: importance-ratio truncation."""
    n_boot: int = 200
    """Bootstrap resamples for confidence intervals."""
    ab_users: int = 1000
    """Users in the simulator's fresh population for the ground-truth A/B."""
    ab_seed: int = 90210
    """Seed of the ground-truth A/B population (same for candidate and current)."""


@dataclass
class GateConfig:
    max_ncis_drop: float = 0.05
    """Refuse when the candidate's NCIS CI upper bound < current NCIS * (1 - this)."""
    max_gauc_drop: float = 0.02
    """Refuse when candidate MTF-GAUC < current MTF-GAUC - this."""
    max_sim_uvc_drop: float = 0.03
    """Refuse when simulator UVC < current * (1 - this) (only when use_simulator)."""
    use_simulator: bool = True
    """Use the simulator's ground truth in the gate (demo); off for real traffic."""
    parity_atol: float = 1e-5
    """Exported actor vs eager actor tolerance."""


@dataclass
class PipelineConfig:
    profile: str = "demo"
    """Name of the YAML profile this config came from."""
    algo: str = "enhanced_rl"
    """Learner to train (enhanced_rl; baselines come with their own names)."""
    sim: SimConfig = field(default_factory=SimConfig)
    """The user simulator (embedded default data source)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward weights."""
    rl: EnhancedRLConfig = field(default_factory=EnhancedRLConfig)
    """EnhancedRL hyper-parameters."""
    data: DataConfig = field(default_factory=DataConfig)
    """Training data selection and loading."""
    quality: QualityConfig = field(default_factory=QualityConfig)
    """Data-quality rules of validate_logs."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Offline and simulator evaluation."""
    gate: GateConfig = field(default_factory=GateConfig)
    """Publication gate thresholds."""
    spark: SparkConfig = field(default_factory=SparkConfig)
    """Spark session settings."""
    storage: StorageConfig = field(default_factory=StorageConfig)
    """Warehouse and catalog."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if hasattr(v, "to_dict") else (
                dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
        return out


def _merge_into(obj: Any, values: dict[str, Any], where: str) -> Any:
    """Return a copy of dataclass `obj` with `values` merged in; unknown keys raise."""
    names = {f.name: f for f in dataclasses.fields(obj)}
    kwargs = {}
    for key, val in values.items():
        if key not in names:
            raise KeyError(f"unknown config key {where}{key}")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur) and isinstance(val, dict):
            kwargs[key] = _merge_into(cur, val, f"{where}{key}.")
        elif isinstance(cur, tuple) and isinstance(val, list):
            kwargs[key] = tuple(val)
        else:
            kwargs[key] = val
    return dataclasses.replace(obj, **kwargs)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        tree = tree.setdefault(p, {})
    tree[parts[-1]] = value


def load_config(profile: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Defaults <- configs/<profile>.yaml <- `section.field=value` overrides."""
    profile = profile or os.environ.get("MTF_PROFILE", "demo")
    path = CONFIG_DIR / f"{profile}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no config profile {profile!r} ({path})")
    values = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override must be section.field=value, got {item!r}")
        k, v = item.split("=", 1)
        _set_path(values, k.strip(), yaml.safe_load(v))
    values["profile"] = profile
    cfg = _merge_into(PipelineConfig(), values, "")
    if master := os.environ.get("MTF_SPARK_MASTER"):
        cfg.spark.master = master
    return cfg
