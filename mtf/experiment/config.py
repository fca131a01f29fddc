"""The experiment plan: `ExperimentConfig` with its `DataPlan` (training logs) and `EvalPlan`
(ground truth and offline metrics), read from configs/experiment/*.yaml (docs/EXPERIMENT.md)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.settings import from_dict
from pipeline.config import PipelineConfig, load_config

ALL_LEARNERS = ("fixed", "cem", "batchrl_mtf", "unified_rl", "enhanced_rl",
                "enhanced_rl_selection")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""A run's name: it ends up in a Delta replaceWhere predicate, so nothing else passes."""


@dataclass
class DataPlan:
    days: int = 3
    """Simulated training days; every learner trains on all of them."""
    start_ds: str = "2030-01-01"
    """First training day (YYYY-MM-DD); the days follow one another."""
    behaviour: str = "fixed"
    """Policy serving day d+1 (with box exploration): this learner fitted on days <= d
    (progressive rounds); 'fixed': the production default serves every day."""
    heldout_ds: str = "2030-06-01"
    """Held-out day for NCIS / MTF-GAUC, served by the fixed weights with box exploration."""


@dataclass
class EvalPlan:
    seeds: tuple[int, ...] = (101, 102, 103, 104, 105)
    """Held-out simulator populations for the ground truth (>= 5; none used in training)."""
    users: int = 2000
    """Users per held-out population."""
    sigma: float = 0.1
    """NCIS Gaussian kernel width of the evaluated policy (normalised action units)."""
    ncis_clip: float = 10.0
    """c: importance-ratio truncation of NCIS."""
    n_boot: int = 200
    """Bootstrap resamples of the NCIS CI."""
    value_steps: int = 1500
    """Gradient steps of the offline selection value's model (model/offline.py)."""
    pair_oracle_beta: float | None = None
    """When set, also serve the calibrated pair ORACLE around the fixed weights (sim/oracle.py,
    utility E[valid] + beta E[d satisfaction]) to the same populations, and report the share
    of its UVC gain each learner captures; None: skip it."""

    def __post_init__(self) -> None:
        self.seeds = tuple(int(s) for s in self.seeds)
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError("eval.seeds needs >= 2 distinct seeds (5 or more for a report)")


@dataclass
class ExperimentConfig:
    run_id: str = "experiment"
    """Name of the run: rows of experiment_results are replaced per (ds, run_id)."""
    profile: str = "demo"
    """Pipeline profile (configs/pipeline/<profile>.yaml): simulator, reward and RL base."""
    sim: dict[str, Any] = field(default_factory=dict)
    """Overrides of SimConfig fields (e.g. n_users, explore_per_candidate)."""
    rl: dict[str, Any] = field(default_factory=dict)
    """Overrides of EnhancedRLConfig shared by unified_rl and enhanced_rl."""
    learners: tuple[str, ...] = ALL_LEARNERS
    """Learners to fit and compare (model/learners LEARNERS)."""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-learner config overrides, by learner name (after `rl` for the RL learners)."""
    data: DataPlan = field(default_factory=DataPlan)
    """How the training logs are generated."""
    eval: EvalPlan = field(default_factory=EvalPlan)
    """Ground truth and offline metrics."""
    torch_threads: int = 1
    """torch.set_num_threads for the run (the machine is shared)."""
    train_seeds: tuple[int, ...] = ()
    """Training seeds: each learner with a `seed` in its config is fitted once per seed on
    the same logs (CIs over training randomness, `*_delta_pct_train` rows); the ground truth
    per evaluation seed is then the mean over the fits, the offline metrics are of the
    first fit. Empty: one fit with the configured seed."""

    def __post_init__(self) -> None:
        self.learners = tuple(self.learners)
        self.train_seeds = tuple(int(s) for s in self.train_seeds)
        if len(set(self.train_seeds)) != len(self.train_seeds):
            raise ValueError(f"train_seeds must be distinct, got {self.train_seeds}")
        if not RUN_ID_RE.match(self.run_id):
            raise ValueError(f"run_id must match {RUN_ID_RE.pattern}, got {self.run_id!r}")
        unknown = set(self.learners) - set(ALL_LEARNERS)
        if unknown or self.data.behaviour not in ALL_LEARNERS:
            raise ValueError(f"unknown learners {sorted(unknown)} / behaviour "
                             f"{self.data.behaviour!r}; known: {ALL_LEARNERS}")
        bad = set(self.params) - set(self.learners) - {self.data.behaviour}
        if bad:
            raise ValueError(f"params for learners not in the run: {sorted(bad)}")
        # local: model.learners imports torch, which `import mtf.experiment` does not load
        from model.learners import learner_config

        search = learner_config("cem", self.params.get("cem", {})).search_seeds
        overlap = set(search) & set(self.eval.seeds)
        if overlap:
            raise ValueError(f"cem.search_seeds overlap eval.seeds: {sorted(overlap)}")

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        """The plan of an experiment YAML; an unknown key (at any depth) raises KeyError."""
        return from_dict(cls, yaml.safe_load(Path(path).read_text()) or {})

    def pipeline(self) -> PipelineConfig:
        """The pipeline profile with the sim / rl overrides; the RL box is the simulator's."""
        over = [f"sim.{k}={json.dumps(v)}" for k, v in self.sim.items()]
        over += [f"rl.{k}={json.dumps(v)}" for k, v in self.rl.items()]
        cfg = load_config(self.profile, over)
        cfg.rl = dataclasses.replace(cfg.rl, half_width=cfg.sim.explore_half_width)
        return cfg

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain JSON values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))
