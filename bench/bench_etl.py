"""ETL at scale: `build_enhanced_state` on one simulated day of N requests, Spark vs DuckDB.

Why: the daily Spark build must keep up with a production-size day. This bench simulates
a day of N requests (~5 exposures each) with the vectorized simulator, writes the five
bronze tables as Parquet (chunks of fresh users, so users, sessions and ids are all
distinct), then times

* **spark**: the job's own pure transform `jobs.build_enhanced_state.build_enhanced_state`
  on `spark.read.parquet` of those files, written as Parquet (local[2], a Spark conf
  variant per row);
* **duckdb**: the same joins in DuckDB on the same Parquet files, as a single-machine
  reference: per-request feedback sums, session-so-far window, requests x users,
  exposures x items x feedback x request context, the per-request ordered list of pairs,
  and the next-request self join, producing arrays of the same widths (the feature
  arithmetic inside the pair state is simplified: same sizes, not the same values),
  written as Parquet.

It reports wall time, input rows/s (requests + exposures + feedback per second), output
rows, and peak resident memory (the Python process plus its children: Spark's JVM).

    python bench/bench_etl.py --requests 100000 1000000 --out bench/results/etl.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mtf import schema as S  # noqa: E402
from mtf.config import load_config  # noqa: E402

BRONZE = ("raw_users", "raw_items", "raw_requests", "raw_exposures", "raw_feedback")
CHUNK_USERS = 20_000
DS = "2026-06-01"
SPARK_VARIANTS = {
    # the profile's settings: few shuffle partitions, AQE on (Spark 4 default)
    "spark default (4 shuffle partitions)": {},
    # more, smaller shuffle partitions; broadcast the small sides (users, items) eagerly
    "spark 16 partitions + 64 MB broadcast": {
        "spark.sql.shuffle.partitions": "16",
        "spark.sql.autoBroadcastJoinThreshold": str(64 << 20),
        "spark.sql.files.maxPartitionBytes": str(64 << 20)},
}


class PeakRSS:
    """Samples the RSS of this process (and its children: Spark's JVM) every 0.2 s."""

    def __init__(self, children: bool) -> None:
        self.children = children
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = 0
            for p in [me, *(me.children(recursive=True) if self.children else [])]:
                try:
                    rss += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, rss)
            time.sleep(0.2)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def simulate_bronze(n_requests: int, out: Path, seed: int) -> dict[str, int]:
    """Simulate chunks of fresh users until n_requests; write each table as Parquet parts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sim import World, simulate_day
    from sim.policies import FixedWeightsPolicy

    cfg = load_config("demo")
    counts = dict.fromkeys(BRONZE, 0)
    chunk = 0
    while counts["raw_requests"] < n_requests:
        left = n_requests - counts["raw_requests"]
        # ~6 requests per user a day in the demo world; the last chunk is cut to size
        users = min(CHUNK_USERS, max(100, int(left / 5.5)))
        sim_cfg = dataclasses.replace(cfg.sim, n_users=users)
        world = World.build(sim_cfg, population=seed * 1000 + chunk, n_users=users)
        logs = simulate_day(world, FixedWeightsPolicy(version="fixed-v0"), DS, seed=seed + chunk)
        req = logs.raw_requests.iloc[:left]
        keep = set(req["request_id"])
        prefix, offset = f"c{chunk}-", chunk * CHUNK_USERS
        tables = {"raw_users": logs.raw_users, "raw_requests": req,
                  "raw_exposures": logs.raw_exposures[logs.raw_exposures["request_id"].isin(keep)],
                  "raw_feedback": logs.raw_feedback[logs.raw_feedback["request_id"].isin(keep)]}
        if chunk == 0:
            tables["raw_items"] = logs.raw_items
        for name, df in tables.items():
            df = df.copy()
            if "user_id" in df:
                df["user_id"] += offset
            for col in ("request_id", "session_id"):
                if col in df:
                    df[col] = prefix + df[col]
            (out / name).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False),
                           out / name / f"part-{chunk:04d}.parquet", row_group_size=250_000)
            counts[name] += len(df)
        chunk += 1
    return counts


def run_spark(bronze: Path, out: Path, extra_conf: dict[str, str]) -> tuple[int, float]:
    """(rows written, seconds of read + build + write); the JVM's start is not timed."""
    from pyspark.sql import SparkSession

    from jobs.build_enhanced_state import build_enhanced_state

    cfg = load_config("demo")
    builder = (SparkSession.builder.master("local[2]").appName("bench-etl")
               .config("spark.driver.memory", "6g")
               .config("spark.sql.shuffle.partitions", str(cfg.spark.shuffle_partitions))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    for k, v in extra_conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        t0 = time.perf_counter()
        src = {t: spark.read.parquet(str(bronze / t)) for t in BRONZE}
        enhanced, _ = build_enhanced_state(src["raw_users"], src["raw_items"],
                                           src["raw_requests"], src["raw_exposures"],
                                           src["raw_feedback"], cfg.reward, cfg.data)
        enhanced.write.mode("overwrite").parquet(str(out))
        wall = time.perf_counter() - t0
        return spark.read.parquet(str(out)).count(), wall
    finally:
        spark.stop()


def duckdb_sql(bronze: Path, out: Path) -> str:
    """The build's joins in DuckDB SQL (see the module docstring for what is simplified)."""
    L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM
    src = {t: f"read_parquet('{bronze / t}/*.parquet')" for t in BRONZE}
    one_hot = ", ".join(f"i.category = {k}" for k in range(S.NUM_CATEGORIES))
    return f"""
    COPY (
    WITH per_req AS (
      SELECT request_id, sum(watch_time_s) AS w, sum(valid) AS v,
             max(exit_after_request) AS exit_after_request
      FROM {src['raw_feedback']} GROUP BY request_id),
    ctx AS (
      SELECT r.request_id, r.session_id, r.user_id, r.request_index, p.exit_after_request,
             coalesce(sum(coalesce(p.w, 0)) OVER s, 0) AS watch_before,
             coalesce(sum(coalesce(p.v, 0)) OVER s, 0) AS valid_before,
             list_concat([u.age_bucket, u.gender, u.region, u.activity]::FLOAT[],
                         u.interest::FLOAT[],
                         [sin(r.hour), cos(r.hour), r.device, r.network,
                          r.request_index]::FLOAT[]) AS ub
      FROM {src['raw_requests']} r
      LEFT JOIN per_req p USING (request_id)
      JOIN {src['raw_users']} u USING (user_id)
      WINDOW s AS (PARTITION BY r.session_id ORDER BY r.request_index
                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)),
    pairs AS (
      SELECT e.request_id, e.position,
             list_resize(list_concat(
               list_resize(list_concat(c.ub, [c.watch_before, c.valid_before]::FLOAT[]),
                           {S.D_USER}, 0.0),
               i.item_vec::FLOAT[], [ln(1 + i.duration_s), i.popularity]::FLOAT[],
               [{one_hot}]::FLOAT[],
               e.preds::FLOAT[], e.cand_rank::FLOAT[], e.cand_z::FLOAT[]), {D}, 0.0) AS ps,
             e.action::FLOAT[] AS a, e.mu_bp::FLOAT[] AS mu,
             coalesce(f.watch_time_s, 0) / 60.0 AS rw,
             coalesce(f.valid, 0) + coalesce(f."like", 0) + 2 * coalesce(f.share, 0)
               + 1.5 * coalesce(f.collect, 0) AS ro
      FROM {src['raw_exposures']} e
      JOIN {src['raw_items']} i USING (item_id)
      LEFT JOIN {src['raw_feedback']} f USING (request_id, item_id)
      JOIN ctx c USING (request_id)),
    lists AS (
      SELECT request_id, count(*) AS n_items,
             list_resize(flatten(list(ps ORDER BY position)), {L * D}, 0.0) AS pair_state,
             list_resize(flatten(list(a ORDER BY position)), {L * A}, 0.0) AS action,
             list_resize(flatten(list(mu ORDER BY position)), {L * A}, 0.0) AS box_center,
             list_resize(list(rw ORDER BY position), {L}, 0.0) AS reward_watch,
             list_resize(list(ro ORDER BY position), {L}, 0.0) AS reward_other
      FROM pairs GROUP BY request_id),
    rows AS (
      SELECT l.*, c.session_id, c.user_id, c.request_index, c.exit_after_request
      FROM lists l JOIN ctx c USING (request_id))
    SELECT r.request_id, r.session_id, r.user_id, r.request_index, r.n_items, r.pair_state,
           r.action, r.box_center, r.reward_watch, r.reward_other,
           coalesce(nx.pair_state, list_resize([]::FLOAT[], {L * D}, 0.0)) AS next_pair_state,
           coalesce(nx.box_center, list_resize([]::FLOAT[], {L * A}, 0.0)) AS next_box_center,
           (coalesce(r.exit_after_request, 1) = 1 OR nx.request_id IS NULL)::FLOAT AS done
    FROM rows r
    LEFT JOIN rows nx ON nx.session_id = r.session_id AND nx.request_index = r.request_index + 1
    ) TO '{out}' (FORMAT parquet)"""


def run_duckdb(bronze: Path, out: Path) -> tuple[int, float]:
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET temp_directory = '{out.parent / 'duckdb_tmp'}'")
    t0 = time.perf_counter()
    con.execute(duckdb_sql(bronze, out))
    wall = time.perf_counter() - t0
    return con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0], wall


def timed(fn, *args, children: bool) -> dict:
    with PeakRSS(children) as mem:
        rows, wall = fn(*args)
    return {"wall_s": round(wall, 1), "rows_out": int(rows), "peak_rss_mb": round(mem.peak_mb)}


def save(path: str, results: list[dict]) -> None:
    """Write the results so far (a long run killed half-way keeps what it measured)."""
    for r in results:
        ref = [x for x in results if x["requests"] == r["requests"]
               and x["engine"].startswith("duckdb")]
        r["vs_duckdb"] = round(r["wall_s"] / ref[0]["wall_s"], 2) if ref else None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({
        "cpus": os.cpu_count(), "ds": DS,
        "note": "local[2] / DuckDB 2 threads on 2 cores shared with other work; "
                "Spark wall excludes the JVM start; peak RSS: Python + JVM for Spark, "
                "Python only for DuckDB (in-process)",
        "results": results}, indent=2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--out", default="bench/results/etl.json")
    p.add_argument("--work", default=None, help="scratch folder (default: a temp folder)")
    args = p.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="mtf-bench-etl-"))
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    results = []
    best = None
    for i, n in enumerate(sorted(args.requests)):
        bronze = work / f"bronze_{n}"
        t0 = time.perf_counter()
        counts = simulate_bronze(n, bronze, seed=11)
        sim_s = time.perf_counter() - t0
        n_in = counts["raw_requests"] + counts["raw_exposures"] + counts["raw_feedback"]
        size_mb = sum(f.stat().st_size for f in bronze.rglob("*.parquet")) / 2**20
        print(f"== {n} requests: {counts} ({size_mb:.0f} MB Parquet, simulated in "
              f"{sim_s:.0f} s)", flush=True)
        variants = SPARK_VARIANTS if i == 0 or best is None else {best: SPARK_VARIANTS[best]}
        for name, conf in variants.items():
            r = timed(run_spark, bronze, work / f"spark_out_{n}", conf, children=True)
            results.append({"requests": n, "engine": name, **r, "input_rows": n_in,
                            "rows_per_s": round(n_in / r["wall_s"]), "bronze_mb": round(size_mb)})
            print(results[-1], flush=True)
            save(args.out, results)
        if i == 0:
            spark_rows = [r for r in results if r["requests"] == n]
            best = min(spark_rows, key=lambda r: r["wall_s"])["engine"]
        r = timed(run_duckdb, bronze, work / f"duckdb_out_{n}.parquet", children=False)
        results.append({"requests": n, "engine": "duckdb (reference)", **r, "input_rows": n_in,
                        "rows_per_s": round(n_in / r["wall_s"]), "bronze_mb": round(size_mb)})
        print(results[-1], flush=True)
        save(args.out, results)
        shutil.rmtree(work / f"spark_out_{n}", ignore_errors=True)
    from tabulate import tabulate

    print(tabulate([[r["requests"], r["engine"], r["input_rows"], r["rows_out"], r["wall_s"],
                     r["rows_per_s"], r["peak_rss_mb"], r["vs_duckdb"]] for r in results],
                   headers=["requests", "engine", "input rows", "rows out", "wall s",
                            "input rows/s", "peak RSS MB", "x DuckDB"]))
    save(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
