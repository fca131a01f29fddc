"""End to end: a tiny simulated day through the real Airflow DAGs (spark-submit, Delta,
Petastorm, PyTorch), then the next day is served by the published policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mtf.config import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.spark]
MTF = [sys.executable, "-m", "mtf.cli"]


@pytest.fixture(scope="module")
def e2e_env(tmp_root):
    # its own warehouse and metastore: the embedded Derby metastore admits one JVM at a
    # time, and the test session's Spark may hold the shared one
    root = tmp_root / "e2e"
    env = dict(os.environ, MTF_PROFILE="test", MTF_WAREHOUSE=str(root / "warehouse"),
               MTF_METASTORE_DIR=str(root / "metastore"), MTF_AIRFLOW_HOME=str(root / "airflow"))
    return env


def _mtf(env, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([*MTF, *args], cwd=PROJECT_ROOT, text=True, capture_output=True,
                          timeout=timeout, env=env)


def test_two_days_through_airflow_close_the_loop(e2e_env):
    res = _mtf(e2e_env, "demo", "--days", "2", "--start", "2032-01-01")
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "2032-01-01" in res.stdout and "2032-01-02" in res.stdout
    out = _mtf(e2e_env, "sql", "SELECT ds, role, metric, value FROM mtf.offline_metrics "
               "WHERE ds = '2032-01-01' ORDER BY role, metric", "--format", "json")
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    metrics = {(r["role"], r["metric"]) for r in rows}
    for role in ("candidate", "current"):
        for m in ("ncis/sigma_0.05", "ncis/sigma_0.1", "mtf_gauc", "sim/uvc", "sim/udt"):
            assert (role, m) in metrics
    reg = _mtf(e2e_env, "sql", "SELECT model_version, status, artifact_sha256, data_versions, git_sha, "
               "seed FROM mtf.policy_registry ORDER BY ds", "--format", "json")
    regs = json.loads(reg.stdout.strip().splitlines()[-1])
    assert [r["model_version"] for r in regs] == ["enhanced_rl-2032-01-01",
                                                  "enhanced_rl-2032-01-02"]
    assert all(len(r["artifact_sha256"]) == 64 and "enhanced_state" in r["data_versions"]
               for r in regs)
    online = _mtf(e2e_env, "sql", "SELECT ds, policy_version FROM mtf.online_metrics ORDER BY ds",
                  "--format", "json")
    served = {r["ds"]: r["policy_version"] for r in json.loads(
        online.stdout.strip().splitlines()[-1])}
    assert served["2032-01-01"] == "fixed-v0"
    expected_day2 = ("enhanced_rl-2032-01-01" if regs[0]["status"] == "published"
                     else "fixed-v0")
    assert served["2032-01-02"] == expected_day2
