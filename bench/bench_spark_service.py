"""What a Spark step costs before it does any work, and what an analyst waits for one
query: a fresh spark-submit JVM per step (the cluster path, and the embedded default before
the Spark service) against a Spark Connect client of the warehouse's long-lived service.

    make bench-spark   # python bench/bench_spark_service.py --out bench/results/...json

Cases, each run `--repeats` times on throw-away warehouses (test profile; one used
classically, one served by a service started once and left up, as it is meant to run),
rounds interleaved so that a neighbour's load hits every case alike; wall time of the whole
process, which is what Airflow and a person wait for:
1. a trivial job (`bench/trivial_job.py`: the job entry of every step, `SELECT 1`, exit)
   through `spark-submit` with the jobs' conf and Delta package (baseline);
2. the same job as a Spark Connect client process of the running service;
3. `mtf sql` of a one-row query: its own JVM (no service) and with the service up.
The service's start-up and the first calls on it (cold JIT and metastore client) are
measured once. The JSON records the load average.
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
    # two warehouses of the same content: one used classically (each process its own JVM),
    # one served by a long-lived service (started once, as it is meant to run)
    envs = {kind: dict(os.environ, MTF_PROFILE="test", PYTHONPATH=str(ROOT),
                       MTF_WAREHOUSE=str(work / kind), PYSPARK_PYTHON=sys.executable)
            for kind in ("classic", "service")}
    envs["classic"]["MTF_SPARK_CONNECT"] = "off"
    os.environ.update(envs["service"])
    cfg = load_config("test")
    submit = [str(BIN / "spark-submit"), "--master", cfg.spark.master,
              "--packages", delta_package()]
    os.environ.update(envs["classic"])
    for k, v in spark_conf(load_config("test")).items():
        submit += ["--conf", f"{k}={v}"]
    os.environ.update(envs["service"])
    submit += [str(JOB), "--ds", "2026-01-01"]
    client = [sys.executable, str(JOB), "--ds", "2026-01-01"]
    sql = [str(BIN / "mtf"), "sql", QUERY]
    load = [os.getloadavg()[0]]
    views = [str(BIN / "mtf"), "views"]  # creates the catalog's tables and views
    timed(submit, envs["classic"])  # warms the Ivy cache
    timed(views, envs["classic"])
    t0 = time.perf_counter()
    st, _ = service.start(cfg)
    start_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"spark-submit trivial job": [],
                                     "Connect client trivial job": [],
                                     "mtf sql, own JVM": [], "mtf sql, service up": []}
    first: dict[str, float] = {}
    try:
        first["Connect client trivial job"] = timed(client, envs["service"])
        first["mtf views (creates the tables)"] = timed(views, envs["service"])
        first["mtf sql, service up"] = timed(sql, envs["service"])
        for _ in range(args.repeats):
            times["spark-submit trivial job"].append(timed(submit, envs["classic"]))
            times["Connect client trivial job"].append(timed(client, envs["service"]))
            times["mtf sql, own JVM"].append(timed(sql, envs["classic"]))
            times["mtf sql, service up"].append(timed(sql, envs["service"]))
    finally:
        service.stop(cfg)
    load.append(os.getloadavg()[0])
    base = statistics.median(times["spark-submit trivial job"])
    rows = [[name, f"{statistics.median(v):.2f}", f"{min(v):.2f}", f"{max(v):.2f}",
             f"{statistics.median(v) / base:.3f}"] for name, v in times.items()]
    print(tabulate(rows, headers=["case", "median s", "min s", "max s", "x spark-submit"]))
    print(f"\nservice start-up (once): {start_s:.1f} s; first calls on the fresh service: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in first.items())
          + f"; load average {load[0]:.2f} -> {load[1]:.2f}; {args.repeats} rounds")
    out = {"cases": {k: {"seconds": v, "median_s": statistics.median(v)}
                     for k, v in times.items()},
           "baseline": "spark-submit trivial job", "service_start_s": start_s,
           "first_calls_on_fresh_service_s": first,
           "loadavg": load, "repeats": args.repeats, "cpus": os.cpu_count(), "url": st.url}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
