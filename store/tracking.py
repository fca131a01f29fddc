"""MLflow tracking and model registry, next to the Delta tables (not instead of them).

What goes where:

- every training run: one MLflow run in the experiment `tracking.experiment`, with the
  flattened config, seed, git SHA, ds and model_version as params, the Delta versions of the
  tables it read (params `data_version.<table>` and run inputs), the trainer's metric rows
  (train_metrics.jsonl) with their step, the final metrics, and the exported actor,
  meta.json and snapshot.json as artifacts;
- the exported actor becomes a version of the registered model `tracking.registered_model`,
  tagged with the project's `model_version`, `ds` and `actor_sha256`: exactly one version
  per model_version (looked up by its tag before registering, so a rerun or a resumed
  training never registers a second one; a rerun whose actor differs replaces it);
- publish and rollback mirror `policy_registry` (which stays the source of truth for
  serving): the `champion` alias sits on the version of the policy that serves from now on
  (none while the fixed default weights serve), and each version carries a `status` tag
  (`published`, `rejected`, `rolled_back`).

The store is the local SQLite file <local_dir>/_mlflow/mlflow.db with artifacts beside it,
or a tracking server (`tracking.uri`, env MTF_MLFLOW_URI). mlflow is imported on first use.
Every call is idempotent: a rerun sets the same aliases and tags.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from store.config import StorageConfig, TrackingConfig

log = logging.getLogger("store.tracking")

CHAMPION = "champion"
"""The alias of the registered version that serves (policy_registry's newest published)."""
ACTOR_PATH = "actor"
"""Run artifact folder of the exported actor (the registered version's source)."""
STATUSES = ("candidate", "published", "rejected", "rolled_back")
"""Values of a registered version's `status` tag (policy_registry's statuses)."""

T = TypeVar("T")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts -> {"a.b.c": "value"} as MLflow params (lists and tuples as JSON)."""
    out: dict[str, str] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        elif isinstance(v, list | tuple | Mapping):
            out[key] = json.dumps(v, default=str)
        else:
            out[key] = str(v)
    return out


def prepare_store(uri: str) -> None:
    """Create the folder of a local SQLite store (SQLite creates the file, not its folder:
    before the first training it may not exist)."""
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)


def metric_rows(rows: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, int]]:
    """(key, value, step) of every numeric value of the trainer's metric rows (`step` and
    non-numbers left out)."""
    out = []
    for row in rows:
        step = int(row["step"])
        for k, v in row.items():
            if k != "step" and isinstance(v, int | float) and not isinstance(v, bool):
                out.append((k, float(v), step))
    return out


@dataclass(frozen=True)
class TrainingRecord:
    """Where a training run landed: its MLflow run and registered version."""

    run_id: str
    version: str | None
    """The registered model's version number (None when registration was not asked)."""
    reused: bool = False
    """True when the model_version already had this actor registered."""


class Tracker:
    """The MLflow client of one store, experiment and registered model."""

    def __init__(self, uri: str, experiment: str, registered_model: str,
                 artifact_location: str | None = None):
        self.uri, self.experiment, self.model = uri, experiment, registered_model
        self.artifact_location = artifact_location
        self._client: Any = None

    @classmethod
    def from_config(cls, tracking: TrackingConfig, storage: StorageConfig) -> Tracker:
        return cls(tracking.tracking_uri(storage), tracking.experiment,
                   tracking.registered_model, tracking.artifact_location(storage))

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow import MlflowClient

            prepare_store(self.uri)
            self._client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        return self._client

    # -- runs -----------------------------------------------------------------------------

    def experiment_id(self) -> str:
        """The experiment's id, created (with the local artifact location) when missing."""
        from mlflow.exceptions import MlflowException

        exp = self.client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return str(exp.experiment_id)
        try:
            return str(self.client.create_experiment(
                self.experiment, artifact_location=self.artifact_location))
        except MlflowException:  # created meanwhile by another process
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def log_training(self, *, run_name: str, params: Mapping[str, Any],
                     tags: Mapping[str, str], data_versions: Mapping[str, int],
                     metrics: Iterable[tuple[str, float, int]],
                     final_metrics: Mapping[str, float], actor: Path,
                     artifacts: Iterable[Path] = (), model_version: str | None = None,
                     ds: str | None = None, actor_sha256: str | None = None
                     ) -> TrainingRecord:
        """One finished MLflow run of a training: params, tags, data versions, per-step
        metrics, final metrics and artifacts (the actor under `actor/`); then, when
        `model_version` is given, its registered version (`register`)."""
        from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param

        client = self.client
        run = client.create_run(self.experiment_id(), run_name=run_name, tags={
            **tags, "data_versions": json.dumps(dict(data_versions), sort_keys=True)})
        run_id = run.info.run_id
        try:
            all_params = {**{k: str(v) for k, v in params.items()},
                          **{f"data_version.{t}": str(v) for t, v in data_versions.items()}}
            plist = [Param(k, v[:6000]) for k, v in sorted(all_params.items())]
            for i in range(0, len(plist), 100):
                client.log_batch(run_id, params=plist[i:i + 100])
            now = int(time.time() * 1000)
            mlist = [Metric(k, v, now, s) for k, v, s in metrics if not math.isinf(v)]
            mlist += [Metric(f"final/{k}", float(v), now, 0) for k, v in final_metrics.items()
                      if isinstance(v, int | float) and not math.isinf(float(v))]
            for i in range(0, len(mlist), 1000):
                client.log_batch(run_id, metrics=mlist[i:i + 1000])
            if data_versions:
                client.log_inputs(run_id, datasets=[DatasetInput(
                    Dataset(name=t, digest=f"v{v}", source_type="delta",
                            source=json.dumps({"table": t, "version": v})),
                    tags=[InputTag("mlflow.data.context", "training")])
                    for t, v in sorted(data_versions.items())])
            client.log_artifact(run_id, str(actor), ACTOR_PATH)
            for path in artifacts:
                client.log_artifact(run_id, str(path))
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            raise
        client.set_terminated(run_id, "FINISHED")
        if model_version is None:
            return TrainingRecord(run_id, None)
        version, reused = self.register(run_id, model_version, ds=ds, actor_sha256=actor_sha256)
        return TrainingRecord(run_id, version, reused)

    # -- registry -------------------------------------------------------------------------

    def versions_of(self, model_version: str) -> list[Any]:
        """The registered versions tagged with this model_version (newest first)."""
        from mlflow.exceptions import MlflowException

        quoted = model_version.replace("'", "")  # an identifier (core.artifact) anyway
        query = f"name = '{self.model}' and tag.model_version = '{quoted}'"
        try:
            found = self.client.search_model_versions(query)
        except MlflowException as e:  # no registered model yet
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", "")):
                return []
            raise
        return sorted(found, key=lambda mv: int(mv.version), reverse=True)

    def version_of(self, model_version: str) -> str | None:
        """The registered version number of a model_version, or None."""
        found = self.versions_of(model_version)
        return str(found[0].version) if found else None

    def register(self, run_id: str, model_version: str, *, ds: str | None = None,
                 actor_sha256: str | None = None) -> tuple[str, bool]:
        """The registered version of `model_version`, whose source is the run's actor:
        (version, reused). A version of the same model_version and actor is reused (a
        rerun of the logging); one of another actor (the day was trained again) is
        replaced, keeping its aliases and status, so there is one version per model_version."""
        from mlflow.exceptions import MlflowException

        client = self.client
        existing = self.versions_of(model_version)
        for mv in existing:
            if actor_sha256 is not None and mv.tags.get("actor_sha256") == actor_sha256:
                return str(mv.version), True
        try:
            client.create_registered_model(
                self.model, description="Exported fusion actors (TorchScript), one version "
                                        "per model_version; policy_registry decides what serves.")
        except MlflowException as e:
            if "RESOURCE_ALREADY_EXISTS" not in str(getattr(e, "error_code", "")):
                raise
        tags = {"model_version": model_version, "status": "candidate"}
        if ds is not None:
            tags["ds"] = ds
        if actor_sha256 is not None:
            tags["actor_sha256"] = actor_sha256
        carried = {}
        for mv in existing:  # the day trained again: the new actor takes its place
            carried.update({k: v for k, v in mv.tags.items() if k == "status"})
        tags.update(carried)
        mv = client.create_model_version(self.model, f"runs:/{run_id}/{ACTOR_PATH}",
                                         run_id=run_id, tags=tags,
                                         description=f"{model_version} (run {run_id})")
        version = str(mv.version)
        aliases = self.aliases()
        for old in existing:
            for alias in [a for a, v in aliases.items() if v == str(old.version)]:
                client.set_registered_model_alias(self.model, alias, version)
            client.delete_model_version(self.model, str(old.version))
            log.info("MLflow: %s v%s replaced by v%s (trained again)", self.model, old.version,
                     version)
        return version, False

    def set_status(self, model_version: str, status: str) -> str | None:
        """Tag the registered version of `model_version` with `status`; its version number,
        or None when it has none (trained without tracking)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        version = self.version_of(model_version)
        if version is None:
            log.warning("MLflow: %s has no registered version of %s: status %s not recorded",
                        model_version, self.model, status)
            return None
        self.client.set_model_version_tag(self.model, version, "status", status)
        return version

    def aliases(self) -> dict[str, str]:
        """The registered model's aliases: {alias: version} (empty before the first
        registration)."""
        from mlflow.exceptions import MlflowException

        try:
            aliases = self.client.get_registered_model(self.model).aliases or {}
        except MlflowException as e:
            if "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", "")):
                return {}
            raise
        return {a: str(v) for a, v in aliases.items()}

    def champion(self) -> str | None:
        """The version the `champion` alias points at, or None."""
        return self.aliases().get(CHAMPION)

    def set_champion(self, model_version: str | None) -> str | None:
        """Point `champion` at the registered version of `model_version`; None (the fixed
        weights serve) or a model_version without a registered version removes the alias.
        Returns the version it points at now."""
        version = None if model_version is None else self.version_of(model_version)
        if version is None:
            if model_version is not None:
                log.warning("MLflow: %s has no registered version of %s: no %s alias",
                            model_version, self.model, CHAMPION)
            if self.champion() is not None:
                self.client.delete_registered_model_alias(self.model, CHAMPION)
            return None
        self.client.set_registered_model_alias(self.model, CHAMPION, version)
        return version


def open_tracker(tracking: TrackingConfig, storage: StorageConfig) -> Tracker | None:
    """The tracker of this config, or None when tracking is off."""
    return Tracker.from_config(tracking, storage) if tracking.enabled else None


def guarded(what: str, fn: Callable[[], T], *, strict: bool = False) -> T | None:
    """Run a tracking call after the Delta work is done. A failure is a warning (the Delta
    tables and the artifact folder are the record; a rerun fills MLflow in) unless `strict`,
    where it is raised."""
    try:
        return fn()
    except Exception as e:
        if strict:
            raise
        log.warning("MLflow tracking (%s) failed, going on without it: %s: %s", what,
                    type(e).__name__, e)
        return None
