"""Shared fixtures: one local Spark session (with Delta and a throw-away catalog) per run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Everything the tests start writes under one temporary warehouse, never ./warehouse.
_TMP = Path(tempfile.mkdtemp(prefix="mtf-test-"))
os.environ.setdefault("MTF_PROFILE", "test")
os.environ["MTF_WAREHOUSE"] = str(_TMP / "warehouse")
os.environ["MTF_METASTORE_DIR"] = str(_TMP / "metastore")
os.environ["MTF_AIRFLOW_HOME"] = str(_TMP / "airflow")


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def cfg():
    from mtf.config import load_config

    return load_config("test")


@pytest.fixture(scope="session")
def spark(cfg):
    from jobs.spark import get_spark
    from jobs.tables import ensure_tables

    session = get_spark(cfg, "mtf-tests")
    ensure_tables(session, cfg.storage.database)
    yield session
    session.stop()
