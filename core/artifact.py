"""The candidate's artifact folder: its version key and the files in it, named once.

    <local_dir>/_artifacts/<algo>-<ds>/
        checkpoint.pt         learner state + provenance (jobs/train.py)
        actor.pt              exported TorchScript actor (sha256 in meta.json)
        meta.json             provenance: config, seed, git SHA, Delta versions, actor sha256
        snapshot.json         the pinned Delta snapshot the model was trained on
        train_metrics.jsonl   one JSON line per logged training step
        eval.json             offline and simulator evaluation (jobs/evaluate.py)
        gate.json             the gate's decision and reasons (jobs/gate.py)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def model_version(algo: str, ds: str) -> str:
    """Deterministic version key: a rerun of a day replaces that day's candidate."""
    return f"{algo}-{ds}"


def _file(name: str) -> property:
    """A property: the path of file `name` in the artifact folder."""
    return property(lambda self: self.root / name, doc=f"<root>/{name}")


@dataclass(frozen=True)
class Artifact:
    """One artifact folder (a candidate, or its work-in-progress copy) and its files."""

    root: Path

    CHECKPOINT = "checkpoint.pt"
    ACTOR = "actor.pt"
    META = "meta.json"
    SNAPSHOT = "snapshot.json"
    TRAIN_METRICS = "train_metrics.jsonl"
    EVAL = "eval.json"
    GATE = "gate.json"

    checkpoint = _file(CHECKPOINT)
    actor = _file(ACTOR)
    meta = _file(META)
    snapshot = _file(SNAPSHOT)
    train_metrics = _file(TRAIN_METRICS)
    eval = _file(EVAL)
    gate = _file(GATE)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))
