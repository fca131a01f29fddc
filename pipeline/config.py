"""One config loader: typed dataclasses, YAML profiles, environment and CLI overrides.

Profiles live in `configs/pipeline/<profile>.yaml`. The profile is chosen by `--profile` or the
`MTF_PROFILE` environment variable (default `demo`). Any field can be overridden with
`--set section.field=value` (value parsed as YAML). Deployment settings also come from the
environment, so that Airflow connections / cluster settings never live in the repository:

    MTF_WAREHOUSE      warehouse root (local path; object-store URI on a cluster)
    MTF_METASTORE_DIR  where the embedded (Derby) Hive metastore lives (local only)
    MTF_LOCAL_DIR      local or mounted folder for artifacts and reports (required when the
                       warehouse is an object-store URI)
    MTF_SPARK_MASTER   Spark master for jobs started outside spark-submit
    MTF_SPARK_CONNECT  auto | off | sc://host:port: the Spark service jobs attach to
    MTF_MLFLOW_URI     MLflow tracking/registry URI (tracking.uri; default: the SQLite store
                       under <local_dir>/_mlflow)

The resolved config is saved next to every artifact (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from core.reward import RewardConfig
from core.settings import PROJECT_ROOT, check_identifier, from_dict
from model.config import OBJECTIVE_OF, EnhancedRLConfig
from sim.config import SimConfig
from store.config import SparkConfig, StorageConfig, TrackingConfig

CONFIG_DIR = PROJECT_ROOT / "configs" / "pipeline"
"""Pipeline profiles: configs/pipeline/<profile>.yaml (experiment plans live beside, in
configs/experiment/)."""


@dataclass
class DataConfig:
    train_window_days: int = 3
    """Days of enhanced_state (ending at ds) the trainer reads."""
    eval_fraction: float = 0.2
    """Share of sessions held out (by a stable hash of session_id) for evaluation."""
    shuffle_seed: int = 0
    """Seed of Petastorm's row-group shuffle (combined with the epoch number)."""
    candidates: int = 20
    """K: candidate slots per request in enhanced_state (raw_candidates rows with
    cand_index >= K are quarantined)."""
    next_candidates: bool = False
    """Also store the candidates of the session's next request in enhanced_state
    (next_cand_state, next_cand_center, next_cand_mask), for a selection-aware TD target;
    NULL when off (next_cand_state alone is K*D floats a row)."""

    def __post_init__(self) -> None:
        if self.train_window_days < 1 or not 0 <= self.eval_fraction < 1 or self.candidates < 0:
            raise ValueError(f"data needs train_window_days >= 1, 0 <= eval_fraction < 1 and "
                             f"candidates >= 0, got {self.train_window_days}, "
                             f"{self.eval_fraction}, {self.candidates}")


@dataclass
class QualityConfig:
    """Rules of validate_logs (jobs/validate_logs.py) that need a number."""

    max_quarantine_fraction: float = 0.05
    """Hard rule: fail the run when more than this share of a table's landed rows (or of
    sessions) is quarantined: that is an upstream breakage, not a few bad rows."""
    max_watch_time_s: float = 4 * 3600.0
    """Soft rule: a watch time above this (or NaN/inf) is absurd."""
    valid_watch_s: float = 10.0
    """`valid` must equal (watch_time_s > this) (core.schema.VALID_WATCH_SECONDS)."""
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
    value_steps: int = 1500
    """Gradient steps of the selection value's list-TD value model (model/offline.py)."""
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
class ABConfig:
    """The online A/B (core/ab.py): users split by a stable hash of user_id into arms."""

    holdout_share: float = 0.0
    """Share of users served by the fixed default weights (the holdout every lift is
    measured against); 0 serves everybody the current policy (no A/B)."""
    canary_share: float = 0.0
    """Share of users served by the newest candidate the gate did not publish (the current
    policy serves them while there is none)."""
    salt: str = "mtf-ab"
    """Salt of the user hash: a new salt reshuffles every user's arm (a new experiment)."""
    regression_threshold: float = 0.02
    """Alert `online_regression` when an arm's UVC or UDT lift against the holdout is below
    minus this and its 95% CI lies wholly below 0."""

    def __post_init__(self) -> None:
        from core.ab import split_shares

        split_shares(self.holdout_share, self.canary_share)  # raises on bad shares
        if not self.salt or self.regression_threshold < 0:
            raise ValueError(f"ab needs a salt and regression_threshold >= 0, got "
                             f"{self.salt!r}, {self.regression_threshold}")

    def shares(self) -> tuple[tuple[str, float], ...]:
        from core.ab import split_shares

        return split_shares(self.holdout_share, self.canary_share)


@dataclass
class AlertsConfig:
    """Who is told when a day goes wrong (mtf/alerts.py; Airflow notifiers)."""

    log: bool = True
    """Append every alert as one JSON line to <local_dir>/_alerts/alerts.jsonl."""
    smtp_to: tuple[str, ...] = ()
    """Also e-mail every alert to these addresses (Airflow's SMTP notifier)."""
    smtp_conn_id: str = "smtp_default"
    """Airflow connection of the SMTP server (host, port, login: never in the repository)."""


@dataclass
class PipelineConfig:
    profile: str = "demo"
    """Name of the YAML profile this config came from."""
    algo: str = "enhanced_rl"
    """Learner to train: 'enhanced_rl' (the paper's actor loss on the exposed pairs) or
    'enhanced_rl_selection' (the selection-aware actor objective over the logged candidates);
    it names the model versions and must agree with rl.actor_objective
    (`model.config.OBJECTIVE_OF`)."""
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
    ab: ABConfig = field(default_factory=ABConfig)
    """The online A/B arms of the serving side."""
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    """Where alerts go (failed task, rejected candidate, missed deadline, online
    regression)."""
    spark: SparkConfig = field(default_factory=SparkConfig)
    """Spark session settings."""
    storage: StorageConfig = field(default_factory=StorageConfig)
    """Warehouse and catalog."""
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    """MLflow tracking and model registry (next to the Delta tables, not instead)."""

    def __post_init__(self) -> None:
        # the learner's name becomes a model version, an artifact folder and SQL literals
        check_identifier(self.algo, "algo")
        if self.algo not in OBJECTIVE_OF:
            raise ValueError(f"algo must be one of {sorted(OBJECTIVE_OF)}, got {self.algo!r}")
        if self.rl.actor_objective != OBJECTIVE_OF[self.algo]:
            raise ValueError(f"algo {self.algo!r} trains with rl.actor_objective = "
                             f"{OBJECTIVE_OF[self.algo]!r}, got {self.rl.actor_objective!r}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if hasattr(v, "to_dict") else (
                dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v)
        return out


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for p in parts[:-1]:
        tree = tree.setdefault(p, {})
    tree[parts[-1]] = value


def profiles() -> list[str]:
    """The pipeline profiles: the names of configs/pipeline/*.yaml."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def load_config(profile: str | None = None, overrides: list[str] | None = None) -> PipelineConfig:
    """Defaults <- configs/pipeline/<profile>.yaml <- `section.field=value` overrides."""
    profile = profile or os.environ.get("MTF_PROFILE", "demo")
    known = profiles()
    if profile not in known:  # by name only: never a path to some other YAML
        raise ValueError(f"unknown config profile {profile!r}; the profiles are "
                         f"{', '.join(known)} (configs/pipeline/<name>.yaml)")
    path = CONFIG_DIR / f"{profile}.yaml"
    values = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override must be section.field=value, got {item!r}")
        k, v = item.split("=", 1)
        _set_path(values, k.strip(), yaml.safe_load(v))
    values["profile"] = profile
    cfg = from_dict(PipelineConfig, values)
    if master := os.environ.get("MTF_SPARK_MASTER"):
        cfg.spark.master = master
    return cfg
