"""What a Spark step costs before it does any work, and what an analyst waits for one
query: a fresh spark-submit JVM per step (the cluster path, and the embedded default before
the Spark service) against a Spark Connect client of the warehouse's long-lived service.

    make bench-spark   # python bench/bench_spark_service.py --out bench/results/...json

Cases, each run `--repeats` times on one throw-away warehouse (test profile), rounds
interleaved so that a neighbour's load hits every case alike; wall time of the whole
process, which is what Airflow and a person wait for:
1. a trivial job (`bench/trivial_job.py`: the job entry of every step, `SELECT 1`, exit)
   through `spark-submit` with the jobs' conf and Delta package (baseline);
2. the same job as a Spark Connect client process of the running service;
3. `mtf sql` of a one-row query: its own JVM (no service) and with the service up.
The service's own start-up is measured once. The JSON records the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_config  # noqa: E402
from store import service  # noqa: E402
from store.spark_conf import delta_package, spark_conf  # noqa: E402

BIN = Path(sys.executable).parent
JOB = ROOT / "bench" / "trivial_job.py"
QUERY = "SELECT count(*) AS n FROM mtf.dq_metrics"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if res.returncode:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed:\n{res.stderr[-3000:]}")
    return took


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/spark_service.json")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mtf-bench-spark-"))
    env = dict(os.environ, MTF_PROFILE="test", MTF_WAREHOUSE=str(work / "warehouse"),
               PYTHONPATH=str(ROOT), PYSPARK_PYTHON=sys.executable)
    os.environ.update(env)
    cfg = load_config("test")
    submit = [str(BIN / "spark-submit"), "--master", cfg.spark.master,
              "--packages", delta_package()]
    for k, v in spark_conf(cfg).items():
        submit += ["--conf", f"{k}={v}"]
    submit += [str(JOB), "--ds", "2026-01-01"]
    client = [sys.executable, str(JOB), "--ds", "2026-01-01"]
    sql = [str(BIN / "mtf"), "sql", QUERY]
    classic = dict(env, MTF_SPARK_CONNECT="off")
    timed(submit, classic)  # creates the catalog and the tables; warms the Ivy cache
    times: dict[str, list[float]] = {"spark-submit trivial job": [],
                                     "Connect client trivial job": [],
                                     "mtf sql, own JVM": [], "mtf sql, service up": []}
    load = [os.getloadavg()[0]]
    t0 = time.perf_counter()
    st, _ = service.start(cfg)
    start_s = time.perf_counter() - t0
    try:
        for _ in range(args.repeats):
            service.stop(cfg)
            times["spark-submit trivial job"].append(timed(submit, classic))
            times["mtf sql, own JVM"].append(timed(sql, classic))
            service.start(cfg)
            times["Connect client trivial job"].append(timed(client, env))
            times["mtf sql, service up"].append(timed(sql, env))
    finally:
        service.stop(cfg)
    load.append(os.getloadavg()[0])
    base = statistics.median(times["spark-submit trivial job"])
    rows = [[name, f"{statistics.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}",
             f"{statistics.median(v) / base:.3f}"] for name, v in times.items()]
    print(tabulate(rows, headers=["case", "median s", "min s", "max s", "x spark-submit"]))
    print(f"\nservice start-up (once): {start_s:.1f} s; load average {load[0]:.2f} -> "
          f"{load[1]:.2f}; {args.repeats} rounds")
    out = {"cases": {k: {"seconds": v, "median_s": statistics.median(v)}
                     for k, v in times.items()},
           "baseline": "spark-submit trivial job", "service_start_s": start_s,
           "loadavg": load, "repeats": args.repeats, "cpus": os.cpu_count(), "url": st.url}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
