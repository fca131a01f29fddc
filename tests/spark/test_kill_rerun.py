"""A Spark job SIGKILLed in the middle of a Delta write, then rerun: tables consistent and
complete. The job is validate_logs (it writes eleven tables one after the other); it is
killed when the first data file of raw_requests appears, i.e. with raw_users and raw_items
committed and raw_requests half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT
from store.tables import BRONZE

pytestmark = pytest.mark.spark
DS = "2033-07-01"

CHECK = """
import json, sys
from store.spark import get_spark
from jobs.validate_logs import run
from pipeline.config import load_config
cfg = load_config("test")
spark = get_spark(cfg, "kill-rerun-check")
from store.tables import ensure_tables
ensure_tables(spark, "mtf")
ds, tables = sys.argv[1], sys.argv[2].split(",")
def counts():
    return {t: spark.sql(f"SELECT count(*) FROM mtf.{t} WHERE ds = '{ds}'").first()[0]
            for t in tables}
before = counts()
run(spark, cfg, ds, run_id="kill-test")
after = counts()
dups = spark.sql(f"SELECT count(*) - count(DISTINCT request_id) FROM mtf.raw_requests "
                 f"WHERE ds = '{ds}'").first()[0]
print("RESULT " + json.dumps({"before": before, "after": after, "dups": dups}))
"""


def _data_files(path: Path) -> list[Path]:
    return [p for p in path.rglob("*.parquet")] if path.exists() else []


def test_validate_logs_killed_mid_write_then_rerun(spark, cfg, tmp_root, monkeypatch):
    from core.policy import FixedWeightsPolicy
    from jobs.simulate import to_spark
    from sim import World, simulate_day
    from store.landing import seal_landing

    root = tmp_root / "kill"
    env = dict(os.environ, MTF_PROFILE="test", MTF_WAREHOUSE=str(root / "warehouse"),
               MTF_METASTORE_DIR=str(root / "metastore"))
    logs = simulate_day(World.build(cfg.sim, n_users=60), FixedWeightsPolicy(), DS,
                        explore=True)
    expected = {t: len(getattr(logs, t)) for t in BRONZE}
    for t in BRONZE:  # land the day in the other warehouse (Parquet + manifest, no catalog)
        to_spark(spark, getattr(logs, t), cfg.storage.database, t).write.mode(
            "overwrite").parquet(str(root / "warehouse" / "_landing" / t / DS))
        with monkeypatch.context() as m:
            m.setenv("MTF_WAREHOUSE", str(root / "warehouse"))
            seal_landing(cfg, t, DS, expected_rows=expected[t])

    proc = subprocess.Popen([sys.executable, "-m", "mtf.cli", "validate-logs", "--ds", DS],
                            cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    target = root / "warehouse" / "mtf.db" / "raw_requests"
    deadline = time.monotonic() + 600
    try:
        while not _data_files(target):
            assert proc.poll() is None, "job ended before it was killed"
            assert time.monotonic() < deadline, "no raw_requests file within 600 s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the Python driver and its JVM
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    res = subprocess.run([sys.executable, "-c", CHECK, DS, ",".join(BRONZE)], cwd=PROJECT_ROOT,
                         env=env, text=True, capture_output=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(next(ln for ln in res.stdout.splitlines()
                          if ln.startswith("RESULT "))[7:])
    # after the kill, every table holds the day completely or not at all (never a part)
    for t in BRONZE:
        assert out["before"][t] in (0, expected[t]), (t, out["before"][t], expected[t])
    assert out["before"]["raw_users"] == expected["raw_users"]  # committed before the kill
    # the rerun completes every table, without duplicates
    assert out["after"] == expected
    assert out["dups"] == 0
