"""Code and run provenance recorded with every model."""

from __future__ import annotations

import subprocess
from pathlib import Path

from core.artifact import model_version
from core.settings import PROJECT_ROOT
from pipeline.config import PipelineConfig


def git_sha() -> str:
    """HEAD's SHA, suffixed with '-dirty' when the work tree has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, text=True, capture_output=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def artifact_dir(cfg: PipelineConfig, ds: str) -> Path:
    """The candidate's artifact folder: checkpoint, exported actor, eval and gate records."""
    return Path(cfg.storage.artifacts_path()) / model_version(cfg.algo, ds)
