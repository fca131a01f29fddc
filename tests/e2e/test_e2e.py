"""End to end: a tiny simulated day through the real Airflow DAGs (spark-submit, Delta,
Petastorm, PyTorch, publish), then the next day is served by the published policy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import E2E_DAY1

from core.settings import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
MTF = [sys.executable, "-m", "mtf.cli"]
DAY1, DAY2 = E2E_DAY1, "2032-01-02"


def _mtf(env, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([*MTF, *args], cwd=PROJECT_ROOT, text=True, capture_output=True,
                          timeout=timeout, env=env)


def _sql(env, *queries: str) -> list[list[dict]]:
    """Run queries in one `mtf sql` process (one JVM); one result list per query."""
    res = _mtf(env, "sql", *queries, "--format", "json")
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.strip().splitlines() if ln.startswith("[")]
    assert len(lines) == len(queries), res.stdout[-2000:]
    return [json.loads(ln) for ln in lines]


def test_demo_prints_the_day_table(e2e_day1):
    out = e2e_day1.stdout
    assert DAY1 in out and "fixed-v0" in out and "enhanced_rl_selection-" + DAY1 in out
    for header in ("serving policy", "UVC", "UDT", "NCIS", "MTF-GAUC", "decision"):
        assert header in out


@pytest.fixture(scope="module")
def day1_tables(e2e_day1, e2e_env) -> list[list[dict]]:
    """The day's gold tables, read in one `mtf sql` process (one JVM for both tests)."""
    return _sql(
        e2e_env,
        f"SELECT role, metric, value FROM mtf.offline_metrics WHERE ds = '{DAY1}'",
        "SELECT * FROM mtf.policy_registry",
        "SELECT * FROM mtf.online_metrics",
        f"SELECT count(*) AS n, sum(CASE WHEN item_id = -1 THEN 1 END) AS users "
        f"FROM mtf.fusion_weights WHERE ds = '{DAY1}'",
        f"SELECT d.table_name, d.rows_checked, d.rows_failed, b.n AS bronze FROM mtf.dq_metrics d "
        f"JOIN (SELECT 'raw_requests' AS t, count(*) AS n FROM mtf.raw_requests "
        f"WHERE ds = '{DAY1}') b ON b.t = d.table_name "
        f"WHERE d.ds = '{DAY1}' AND d.rule = '_all'",
        "DESCRIBE DETAIL mtf.enhanced_state")


def test_tables_after_one_day(day1_tables):
    rows, reg, online, fw, dq, detail = day1_tables
    metrics = {(r["role"], r["metric"]) for r in rows}
    for role in ("candidate", "current"):
        for m in ("ncis/sigma_0.05", "ncis/sigma_0.1", "mtf_gauc", "sim/uvc", "sim/udt"):
            assert (role, m) in metrics
    assert ("candidate", "losses/critic") in metrics
    assert len(reg) == 1 and reg[0]["model_version"] == f"enhanced_rl_selection-{DAY1}"
    r = reg[0]
    assert r["status"] in ("published", "rejected")
    assert len(r["artifact_sha256"]) == 64 and r["git_sha"] and r["seed"] == 0
    assert "mtf.enhanced_state" in json.loads(r["data_versions"])
    assert json.loads(r["config_json"])["rl"]["steps"] == 20
    assert [(o["ds"], o["policy_version"]) for o in online] == [(DAY1, "fixed-v0")]
    assert online[0]["uvc"] > 0 and online[0]["users"] > 0
    assert fw[0]["n"] > fw[0]["users"] > 0
    # validate_logs ran in the DAG: clean simulated logs, all accepted, counts reconciled
    assert len(dq) == 1 and dq[0]["rows_failed"] == 0
    assert dq[0]["rows_checked"] == dq[0]["bronze"] > 0


def test_uri_warehouse_holds_the_tables_and_local_dir_the_files(day1_tables, e2e_env):
    """Tables live under the warehouse URI; artifacts and the report in MTF_LOCAL_DIR."""
    detail, reg = day1_tables[5][0], day1_tables[1][0]
    warehouse = e2e_env["MTF_WAREHOUSE"].removeprefix("file://")
    assert detail["location"] in (f"file:{warehouse}/mtf.db/enhanced_state",
                                  f"file://{warehouse}/mtf.db/enhanced_state")
    local = Path(e2e_env["MTF_LOCAL_DIR"])
    assert (local / "_artifacts" / reg["model_version"]).is_dir()
    assert (local / "_reports" / DAY1 / "report.html").stat().st_size > 0


def test_next_day_is_served_by_the_published_policy(day1_tables, e2e_env):
    res = _mtf(e2e_env, "simulate", "--ds", DAY2)
    assert res.returncode == 0, res.stderr[-3000:]
    reg = day1_tables[1][0]  # the registry after day 1 (simulate does not change it)
    expected = reg["model_version"] if reg["status"] == "published" else "fixed-v0"
    # the day's raw logs have landed (validate_logs of the next daily run loads them)
    import pyarrow.parquet as pq

    landed = (Path(e2e_env["MTF_WAREHOUSE"].removeprefix("file://")) / "_landing"
              / "raw_requests" / DAY2)
    assert (landed / "_SUCCESS").exists() and (landed / "_MANIFEST.json").exists()
    served = set(pq.read_table(landed, columns=["policy_version"]).column(0).to_pylist())
    assert served == {expected}
