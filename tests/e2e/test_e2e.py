"""End to end: a tiny simulated day through the real Airflow DAGs (the Spark Connect
service, Delta, Petastorm, PyTorch, publish); the next day is served by the published
policy; two days run at once in separate processes."""

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
DAY1, DAY2, DAY3 = E2E_DAY1, "2026-06-02", "2026-06-03"


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
    # the A/B of the test profile: before any publication both arms serve the fixed weights
    assert sorted((o["ds"], o["arm"], o["policy_version"]) for o in online) == [
        (DAY1, "current", "fixed-v0"), (DAY1, "holdout", "fixed-v0")]
    for o in online:
        assert o["uvc"] > 0 and o["users"] > 0 and o["uvc_se"] > 0
    arms = {o["arm"]: o for o in online}
    assert arms["holdout"]["uvc_lift"] is None
    lo, hi = arms["current"]["uvc_lift_low"], arms["current"]["uvc_lift_high"]
    assert lo < arms["current"]["uvc_lift"] < hi and not arms["current"]["regression"]
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


@pytest.fixture(scope="module")
def days_landed(day1_tables, e2e_env) -> None:
    """The logs of days 2 and 3, simulated after day 1 (both served by what day 1 left)."""
    for ds in (DAY2, DAY3):
        res = _mtf(e2e_env, "simulate", "--ds", ds)
        assert res.returncode == 0, res.stderr[-3000:]


def test_next_day_is_served_by_the_published_policy(day1_tables, days_landed, e2e_env):
    reg = day1_tables[1][0]  # the registry after day 1 (simulate does not change it)
    expected = reg["model_version"] if reg["status"] == "published" else "fixed-v0"
    # the day's raw logs have landed (validate_logs of the next daily run loads them)
    import pyarrow.parquet as pq

    landed = (Path(e2e_env["MTF_WAREHOUSE"].removeprefix("file://")) / "_landing"
              / "raw_requests" / DAY2)
    assert (landed / "_SUCCESS").exists() and (landed / "_MANIFEST.json").exists()
    served = pq.read_table(landed, columns=["arm", "policy_version"]).to_pylist()
    assert {(r["arm"], r["policy_version"]) for r in served} == {
        ("current", expected), ("holdout", "fixed-v0")}


# The tables a day writes from its own logs alone, and the columns that must match between
# runs (dq_metrics' run_id names the run). The gold tables of the release (registry, offline
# metrics, fusion weights) depend on which policy is published when a day is evaluated, so
# two days at once and two days in order may legitimately differ there.
DAY_TABLES = {t: "*" for t in ("raw_users", "raw_items", "raw_requests", "raw_exposures",
                               "raw_feedback", "raw_candidates", "enhanced_state",
                               "user_state", "online_metrics")}
DAY_TABLES["dq_metrics"] = "table_name, rule, severity, rows_checked, rows_failed"


def _fingerprints(env) -> dict[str, list[dict]]:
    """Rows and an order-free hash of every row, per day-local table and day."""
    days = f"('{DAY2}', '{DAY3}')"
    queries = [f"SELECT ds, count(*) AS n, bit_xor(xxhash64({cols})) AS h FROM mtf.{t} "
               f"WHERE ds IN {days} GROUP BY ds ORDER BY ds" for t, cols in DAY_TABLES.items()]
    return dict(zip(DAY_TABLES, _sql(env, *queries), strict=True))


def _daily(env, ds: str) -> subprocess.Popen:
    return subprocess.Popen([*MTF, "airflow", "--", "dags", "test", "mtf_daily", ds],
                            cwd=PROJECT_ROOT, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=env)


def _finished(proc: subprocess.Popen) -> str:
    out, _ = proc.communicate(timeout=1200)
    assert proc.returncode == 0 and "state=success" in out.replace(" ", ""), out[-4000:]
    return out


def test_two_days_at_once_in_separate_processes(days_landed, e2e_env):
    """Days 2 and 3 through mtf_daily at the same time, each in its own process against the
    one Spark service; an analyst's query during the run; the same day built twice at once;
    then the steps that write the day tables (validate_logs, build_enhanced_state,
    online_metrics) again, one day after the other: the day tables are the same."""
    runs = [_daily(e2e_env, ds) for ds in (DAY2, DAY3)]
    during = _sql(e2e_env, "SELECT count(*) AS n FROM mtf.raw_requests")  # meanwhile
    assert during[0][0]["n"] > 0
    assert all(r.poll() is None for r in runs), "the query should run while the days do"
    for r in runs:
        _finished(r)
    together = _fingerprints(e2e_env)
    for table, rows in together.items():
        assert [r["ds"] for r in rows] == [DAY2, DAY3], table
        assert all(r["n"] > 0 for r in rows), table

    twice = [subprocess.Popen([*MTF, "build-state", "--ds", DAY2], cwd=PROJECT_ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e2e_env)
             for _ in range(2)]
    for r in twice:
        out, _ = r.communicate(timeout=1200)
        assert r.returncode == 0, out[-4000:]
    assert _fingerprints(e2e_env)["enhanced_state"] == together["enhanced_state"]

    for ds in (DAY2, DAY3):
        for step in ("validate-logs", "build-state", "online-metrics"):
            res = _mtf(e2e_env, step, "--ds", ds)
            assert res.returncode == 0, res.stderr[-3000:]
    assert _fingerprints(e2e_env) == together
