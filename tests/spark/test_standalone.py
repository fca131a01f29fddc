"""Scale-out by configuration: a job runs on a Spark standalone cluster (one master, one
worker, started here with pyspark's bin/spark-class) with nothing changed but
MTF_SPARK_MASTER, and the master's JSON status shows the application and its executor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

pytestmark = pytest.mark.spark
DS = "2035-01-01"
SPARK_CLASS = str(Path(sys.executable).parent / "spark-class")


def _free_port() -> int:
    from mtf.airflow_ui import free_port

    return free_port()


def _status(webui: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture(scope="module")
def cluster(tmp_root):
    """(master URL, master web UI port) of a running master with one registered worker."""
    root = tmp_root / "standalone"
    root.mkdir(parents=True, exist_ok=True)
    port, webui, worker_ui = _free_port(), _free_port(), _free_port()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               SPARK_LOG_DIR=str(root), SPARK_WORKER_DIR=str(root / "work"))
    url = f"spark://127.0.0.1:{port}"
    procs = []
    try:
        for name, args in (
                ("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                            "--port", str(port), "--webui-port", str(webui)]),
                ("worker", ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                            "--cores", "1", "--memory", "1g", "--webui-port", str(worker_ui)])):
            procs.append(subprocess.Popen([SPARK_CLASS, *args], env=env,
                                          stdout=(root / f"{name}.log").open("w"),
                                          stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + 120
        while True:
            try:
                if any(w["state"] == "ALIVE" for w in _status(webui)["workers"]):
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (root / "master.log").read_text()[-2000:]
            assert all(p.poll() is None for p in procs), "master or worker exited"
            time.sleep(1)
        yield url, webui
    finally:
        from mtf.airflow_ui import stop_group

        for p in reversed(procs):
            stop_group(p)


def test_job_runs_on_the_standalone_cluster(cluster, tmp_root, cfg, monkeypatch):
    url, webui = cluster
    root = tmp_root / "standalone"
    # own warehouse and metastore: the embedded Derby metastore admits one JVM at a time
    env = dict(os.environ, MTF_SPARK_MASTER=url, MTF_PROFILE="test",
               MTF_WAREHOUSE=str(root / "warehouse"), MTF_METASTORE_DIR=str(root / "metastore"),
               SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable)
    res = subprocess.run([sys.executable, "-m", "mtf.cli", "simulate", "--ds", DS,
                          "--set", "spark.driver_memory=1g", "--set", "sim.n_users=40"],
                         cwd=PROJECT_ROOT, env=env, text=True, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    # the day's logs were written by the worker's executor, markers last
    from store.landing import missing_landings

    monkeypatch.setenv("MTF_WAREHOUSE", env["MTF_WAREHOUSE"])
    assert missing_landings(cfg, DS) == []
    apps = _status(webui)["completedapps"]
    ours = [a for a in apps if a["name"] == f"mtf-simulate-{DS}"]
    assert ours, [a["name"] for a in apps]
    assert ours[0]["state"] == "FINISHED" and ours[0]["cores"] >= 1  # an executor on the worker
