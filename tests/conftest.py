"""Shared fixtures: one local Spark session (with Delta and a throw-away catalog) per run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Everything the tests start writes under one temporary warehouse, never ./warehouse.
_TMP = Path(tempfile.mkdtemp(prefix="mtf-test-"))
os.environ.setdefault("MTF_PROFILE", "test")
os.environ["MTF_WAREHOUSE"] = str(_TMP / "warehouse")
os.environ["MTF_METASTORE_DIR"] = str(_TMP / "metastore")
os.environ["MTF_AIRFLOW_HOME"] = str(_TMP / "airflow")
os.environ.pop("MTF_MLFLOW_URI", None)  # MLflow: the temporary warehouse's SQLite store only


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """`make test` runs two pytest-xdist workers with `--dist loadgroup`: each test module is
    one unit of work (its module fixtures are built once, on one worker), and the tests
    marked `e2e` (they need the end-to-end Airflow day) share one unit, so the day runs
    once; that unit, the longest, is collected first so that a worker starts on it at once.
    Each worker has its own warehouse and metastore (`_TMP` above is per process)."""
    misplaced = [item.nodeid for item in items if _tier(item) != item.path.parent.name]
    if misplaced:
        raise pytest.UsageError("tests live in the folder of their tier (unit: no marker, "
                                "spark: marked spark, e2e: marked e2e): " + ", ".join(misplaced))
    for item in items:
        group = "e2e" if item.get_closest_marker("e2e") else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)  # stable


def _tier(item: pytest.Item) -> str:
    """The folder a test belongs in: e2e, else spark when any test of its module needs
    Spark (a module's tests share fixtures), else unit."""
    if item.get_closest_marker("e2e"):
        return "e2e"
    spark = any(getattr(obj, "pytestmark", None) and "spark" in _marks(obj)
                for obj in vars(item.module).values()) or "spark" in _marks(item.module)
    return "spark" if spark or item.get_closest_marker("spark") else "unit"


def _marks(obj: object) -> set[str]:
    marks = getattr(obj, "pytestmark", [])
    return {m.name for m in (marks if isinstance(marks, list) else [marks])}


@pytest.fixture(scope="session")
def tmp_root() -> Path:
    return _TMP


@pytest.fixture(scope="session")
def cfg():
    from pipeline.config import load_config

    return load_config("test")


@pytest.fixture(scope="session")
def spark(cfg):
    from store.spark import get_spark
    from store.tables import ensure_tables

    session = get_spark(cfg, "mtf-tests")
    ensure_tables(session, cfg.storage.database)
    yield session
    session.stop()


E2E_DAY1 = "2026-06-01"  # a past day: the scheduler runs no logical date in the future


@pytest.fixture(scope="session")
def e2e_env(tmp_root) -> dict[str, str]:
    """Environment of the end-to-end run: its own warehouse, metastore and Airflow home
    (the embedded Derby metastore admits one JVM at a time, and the session's Spark may
    hold the shared one). The warehouse is given as a URI, as an object store's would be
    (tables and landed logs go through Hadoop's FileSystem and fsspec, never local paths);
    artifacts and reports go to the local folder MTF_LOCAL_DIR."""
    root = tmp_root / "e2e"
    return dict(os.environ, MTF_PROFILE="test", MTF_WAREHOUSE=f"file://{root / 'warehouse'}",
                MTF_LOCAL_DIR=str(root / "local"), MTF_METASTORE_DIR=str(root / "metastore"),
                MTF_AIRFLOW_HOME=str(root / "airflow"))


@pytest.fixture(scope="session")
def e2e_day1(e2e_env) -> Iterator[subprocess.CompletedProcess]:
    """One tiny day through the real Airflow DAGs (`mtf demo --days 1`), shared by the
    end-to-end checks (tests/e2e/test_e2e.py) and the browser test of the UI. The demo
    starts the warehouse's Spark service, which the later checks use too; it is stopped
    when the tests are done."""
    from core.settings import PROJECT_ROOT

    cli = [sys.executable, "-m", "mtf.cli"]
    res = subprocess.run([*cli, "demo", "--days", "1", "--start", E2E_DAY1], cwd=PROJECT_ROOT,
                         text=True, capture_output=True, timeout=1500, env=e2e_env)
    try:
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
        yield res
    finally:
        subprocess.run([*cli, "spark", "stop"], cwd=PROJECT_ROOT, env=e2e_env, timeout=120,
                       capture_output=True)
