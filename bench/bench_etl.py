"""ETL at scale: `build_enhanced_state` on one simulated day of N requests, Spark vs DuckDB.

Why: the daily Spark build must keep up with a production-size day. This bench simulates
a day of N requests (~5 exposures and K = 20 logged candidates each) with the vectorized
simulator, writes the six bronze tables as Parquet (chunks of fresh users, so users,
sessions and ids are all distinct), then times

* **spark**: the job's own pure transform `jobs.build_enhanced_state.build_enhanced_state`
  on `spark.read.parquet` of those files, written as Parquet (local[2], a Spark conf
  variant per row);
* **duckdb**: the same joins in DuckDB on the same Parquet files, as a single-machine
  reference: per-request feedback sums, session-so-far window, requests x users,
  exposures x items x feedback x request context, the per-request ordered list of pairs,
  and the next-request self join, producing arrays of the same widths (the feature
  arithmetic inside the pair state is simplified: same sizes, not the same values),
  written as Parquet; the `+cand` plans also build the candidate columns (candidates x
  items x request context, the per-request list of K slots).

It reports wall time, input rows/s (requests + exposures + feedback per second), output
rows, the written bytes per output row, peak resident memory (the Python process plus its
children: Spark's JVM; the day is simulated in a separate process so that its heap is not
counted), and the shape of Spark's physical plan (exchanges, sort-merge and broadcast
joins). `--next-candidates` adds a Spark row with `data.next_candidates` on. With `--baseline REF`
the job's transform as of git revision REF runs too, in the same run, for a before/after
on the same files. With `--work DIR` the simulated bronze files are kept and reused.

    python bench/bench_etl.py --requests 100000 1000000 --out bench/results/etl.json
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import inspect
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import schema as S  # noqa: E402
from pipeline.config import load_config  # noqa: E402

BRONZE = ("raw_users", "raw_items", "raw_requests", "raw_exposures", "raw_feedback",
          "raw_candidates")
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
        self.loads: list[float] = []
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
            self.loads.append(os.getloadavg()[0])
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

    @property
    def mean_load(self) -> float:
        """Mean 1-minute load average while running (the benchmark's own threads included)."""
        return sum(self.loads) / max(1, len(self.loads))


def simulate_bronze(n_requests: int, out: Path, seed: int) -> dict[str, int]:
    """Simulate chunks of fresh users until n_requests; write each table as Parquet parts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.policy import FixedWeightsPolicy
    from sim import World, simulate_day

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
                  "raw_feedback": logs.raw_feedback[logs.raw_feedback["request_id"].isin(keep)],
                  "raw_candidates":
                      logs.raw_candidates[logs.raw_candidates["request_id"].isin(keep)]}
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


def bronze_day(n_requests: int, out: Path, seed: int) -> dict[str, int]:
    """The bronze files of a day of n_requests: reused when `out` has them, else simulated
    in a child process (its heap would otherwise count in the engines' peak RSS)."""
    done = out / "counts.json"
    if done.exists():
        return json.loads(done.read_text())
    shutil.rmtree(out, ignore_errors=True)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        counts = pool.submit(simulate_bronze, n_requests, out, seed).result()
    done.write_text(json.dumps(counts))
    return counts


def tile_bronze(src: Path, copies: int, out: Path) -> dict[str, int]:
    """A day of `copies` x the requests of the simulated day in `src`: each copy of its
    users, requests, exposures and feedback gets new ids (user ids offset, request and
    session ids prefixed), the item catalogue is shared. Same per-request shapes and key
    cardinalities per request as a fresh simulation, without its minutes per 100k."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if (out / "counts.json").exists():
        return json.loads((out / "counts.json").read_text())
    shutil.rmtree(out, ignore_errors=True)
    counts = dict.fromkeys(BRONZE, 0)
    for name in BRONZE:
        (out / name).mkdir(parents=True)
        for part in sorted((src / name).glob("*.parquet")):
            table = pq.read_table(part)
            for k in range(copies if name != "raw_items" else 1):
                t = table
                for col in ("request_id", "session_id"):
                    if col in t.column_names:
                        t = t.set_column(t.column_names.index(col), col,
                                         pc.binary_join_element_wise(f"t{k}-", t[col], ""))
                if "user_id" in t.column_names:
                    t = t.set_column(t.column_names.index("user_id"), "user_id",
                                     pc.add(t["user_id"], k * 100_000_000))
                pq.write_table(t, out / name / f"t{k}-{part.name}", row_group_size=250_000)
                counts[name] += t.num_rows
    (out / "counts.json").write_text(json.dumps(counts))
    return counts


def job_transform(ref: str | None, work: Path) -> Callable:
    """`build_enhanced_state` of the working tree (ref None) or of git revision `ref`, called
    as f(bronze frames by name, reward, data): a revision from before the candidates takes
    the five other tables only."""
    if ref is None:
        from jobs.build_enhanced_state import build_enhanced_state

        return _by_name(build_enhanced_state)
    path = work / f"build_enhanced_state_{ref}.py"
    path.write_text(subprocess.run(["git", "show", f"{ref}:jobs/build_enhanced_state.py"],
                                   cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    spec = importlib.util.spec_from_file_location(f"bench_job_{ref}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _by_name(module.build_enhanced_state)


def _by_name(fn: Callable) -> Callable:
    with_cand = "candidates" in inspect.signature(fn).parameters
    takes = [t for t in BRONZE if t != "raw_candidates" or with_cand]

    def call(src: dict, reward, data):
        return fn(*(src[t] for t in takes), reward, data)

    call.candidates = with_cand  # type: ignore[attr-defined]
    return call


def plan_shape(df) -> dict[str, int]:
    """Counts of shuffles and join kinds in the physical plan before execution (AQE may
    still turn a sort-merge join into a broadcast one at run time); run_spark adds the
    written files' count and size."""
    plan = df._jdf.queryExecution().executedPlan().toString()
    return {"exchanges": plan.count("Exchange hashpartitioning")
            + plan.count("Exchange rangepartitioning"),
            "sort_merge_joins": plan.count("SortMergeJoin"),
            "broadcast_joins": plan.count("BroadcastHashJoin")}


def run_spark(bronze: Path, out: Path, extra_conf: dict[str, str],
              transform: Callable, next_candidates: bool = False
              ) -> tuple[int, float, dict[str, int]]:
    """(rows written, seconds of read + build + write, plan shape); the JVM's start is not
    timed."""
    from pyspark.sql import SparkSession

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
        data = dataclasses.replace(cfg.data, next_candidates=next_candidates)
        enhanced, _ = transform(src, cfg.reward, data)
        shape = plan_shape(enhanced)
        enhanced.write.mode("overwrite").parquet(str(out))
        wall = time.perf_counter() - t0
        files = list(out.glob("*.parquet"))
        n = spark.read.parquet(str(out)).count()
        size = sum(f.stat().st_size for f in files)
        shape |= {"out_files": len(files), "out_mb": round(size / 2**20),
                  "out_bytes_per_row": round(size / max(n, 1))}
        return n, wall, shape
    finally:
        spark.stop()


def duckdb_sql(bronze: Path, out: Path, next_via: str = "join", candidates: int = 0) -> str:
    """The build's joins in DuckDB SQL (see the module docstring for what is simplified).

    next_via "join": the next list by a self join on (session_id, request_index + 1), the
    job's former plan; "lead": by lead() over the session, the job's plan now. With
    `candidates` = K also the candidate columns (K slots by cand_index, zeros and mask 0
    for a request without candidate rows).
    """
    L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM
    K = candidates
    src = {t: f"read_parquet('{bronze / t}/*.parquet')" for t in BRONZE}
    zeros_ps, zeros_bc = (f"list_resize([]::FLOAT[], {n}, 0.0)" for n in (L * D, L * A))
    cand_out = (f""",
           coalesce(kc.cand_state, list_resize([]::FLOAT[], {K * D}, 0.0)) AS cand_state,
           coalesce(kc.cand_center, list_resize([]::FLOAT[], {K * A}, 0.0)) AS cand_center,
           coalesce(kc.cand_mask, list_resize([]::FLOAT[], {K}, 0.0)) AS cand_mask""" if K
                else "")
    cand_join = "LEFT JOIN cands kc USING (request_id)" if K else ""
    cand_sel = ", cand_state, cand_center, cand_mask" if K else ""
    cand_sel_r = ", r.cand_state, r.cand_center, r.cand_mask" if K else ""
    final = {
        "join": f"""
    SELECT r.request_id, r.session_id, r.user_id, r.request_index, r.n_items, r.pair_state,
           r.action, r.box_center, r.reward_watch, r.reward_other{cand_sel_r},
           coalesce(nx.pair_state, {zeros_ps}) AS next_pair_state,
           coalesce(nx.box_center, {zeros_bc}) AS next_box_center,
           (coalesce(r.exit_after_request, 1) = 1 OR nx.request_id IS NULL)::FLOAT AS done
    FROM rows r
    LEFT JOIN rows nx ON nx.session_id = r.session_id AND nx.request_index = r.request_index + 1
    """,
        "lead": f"""
    SELECT request_id, session_id, user_id, request_index, n_items, pair_state, action,
           box_center, reward_watch, reward_other{cand_sel},
           CASE WHEN has_next THEN n_ps ELSE {zeros_ps} END AS next_pair_state,
           CASE WHEN has_next THEN n_bc ELSE {zeros_bc} END AS next_box_center,
           (coalesce(exit_after_request, 1) = 1 OR NOT has_next)::FLOAT AS done
    FROM (SELECT *, coalesce(lead(request_index) OVER w = request_index + 1, false) AS has_next,
                 lead(pair_state) OVER w AS n_ps, lead(box_center) OVER w AS n_bc
          FROM rows WINDOW w AS (PARTITION BY session_id ORDER BY request_index))
    """}[next_via]
    one_hot = ", ".join(f"i.category = {k}" for k in range(S.NUM_CATEGORIES))
    cand_ctes = f"""
    cpairs AS (
      SELECT k.request_id, k.cand_index,
             list_resize(list_concat(
               list_resize(list_concat(c.ub, [c.watch_before, c.valid_before]::FLOAT[]),
                           {S.D_USER}, 0.0),
               i.item_vec::FLOAT[], [ln(1 + i.duration_s), i.popularity]::FLOAT[],
               [{one_hot}]::FLOAT[],
               k.preds::FLOAT[], k.cand_rank::FLOAT[], k.cand_z::FLOAT[]), {D}, 0.0) AS cs,
             k.mu_bp::FLOAT[] AS mu
      FROM {src['raw_candidates']} k
      JOIN {src['raw_items']} i USING (item_id)
      JOIN ctx c USING (request_id)
      WHERE k.cand_index < {K}),
    cands AS (
      SELECT request_id,
             list_resize(flatten(list(cs ORDER BY cand_index)), {K * D}, 0.0) AS cand_state,
             list_resize(flatten(list(mu ORDER BY cand_index)), {K * A}, 0.0) AS cand_center,
             list_resize(list(1.0::FLOAT ORDER BY cand_index), {K}, 0.0) AS cand_mask
      FROM cpairs GROUP BY request_id),""" if K else ""
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
      FROM pairs GROUP BY request_id),{cand_ctes}
    rows AS (
      SELECT l.*, c.session_id, c.user_id, c.request_index, c.exit_after_request{cand_out}
      FROM lists l JOIN ctx c USING (request_id) {cand_join})
    {final}
    ) TO '{out}' (FORMAT parquet)"""


DUCKDB_MEMORY: str | None = None
"""DuckDB's memory_limit (e.g. '8GB'; it spills beyond it), None: its default, 80% of RAM."""


def run_duckdb(bronze: Path, out: Path, plan: str) -> tuple[int, float, dict[str, int]]:
    """plan: "join" / "lead" (the next-list plan), "+cand" for the candidate columns."""
    import duckdb

    next_via, _, cand = plan.partition("+")
    k = load_config("demo").data.candidates if cand else 0
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(f"SET temp_directory = '{out.parent / 'duckdb_tmp'}'")
    if DUCKDB_MEMORY:  # and no row order to keep (the output's order is not compared)
        con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        con.execute("SET preserve_insertion_order = false")
    t0 = time.perf_counter()
    con.execute(duckdb_sql(bronze, out, next_via, k))
    wall = time.perf_counter() - t0
    n = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return n, wall, {"out_bytes_per_row": round(out.stat().st_size / max(n, 1))}


def timed(fn: Callable, *args, children: bool) -> dict:
    with PeakRSS(children) as mem:
        rows, wall, shape = fn(*args)
    return {"wall_s": round(wall, 1), "rows_out": int(rows), "peak_rss_mb": round(mem.peak_mb),
            **shape, "load_avg": round(mem.mean_load, 1)}


def save(path: str, results: list[dict]) -> None:
    """Write the results so far (a long run killed half-way keeps what it measured)."""
    for r in results:  # against the faster DuckDB plan of the same size and columns
        ref = [x["wall_s"] for x in results if x["requests"] == r["requests"]
               and x["engine"].startswith("duckdb")
               and x.get("candidates") == r.get("candidates")]
        r["vs_duckdb"] = round(r["wall_s"] / min(ref), 2) if ref else None
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps({
        "cpus": os.cpu_count(), "ds": DS,
        "note": "local[2] / DuckDB 2 threads on 2 cores shared with other work; "
                "Spark wall excludes the JVM start; peak RSS: Python + JVM for Spark, "
                "Python only for DuckDB (in-process); load_avg: mean 1-minute load "
                "average during the run, the benchmark's own threads included",
        "results": results}, indent=2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--out", default="bench/results/etl.json")
    p.add_argument("--work", default=None,
                   help="scratch folder, bronze files kept for reuse (default: a temp folder)")
    p.add_argument("--baseline", default=None, metavar="REF",
                   help="also run the job's transform of this git revision (before/after)")
    p.add_argument("--variants", nargs="+", choices=list(SPARK_VARIANTS), default=None,
                   help="Spark confs at the smallest size (default: all); the fastest is kept "
                        "for the larger sizes")
    p.add_argument("--tile-from", type=int, default=None, metavar="N",
                   help="build the days of multiples of N requests from copies of the "
                        "simulated day of N (see tile_bronze) instead of simulating them")
    p.add_argument("--duckdb-plans", nargs="+",
                   choices=["join", "lead", "join+cand", "lead+cand"],
                   default=["lead", "lead+cand"],
                   help="DuckDB's plans to run: the next list by a self join or lead(), "
                        "without or with (+cand) the candidate columns")
    p.add_argument("--next-candidates", action="store_true",
                   help="also run the job with data.next_candidates on")
    p.add_argument("--duckdb-memory", default=None, metavar="SIZE",
                   help="DuckDB's memory_limit, e.g. 8GB (default: 80%% of RAM; with the "
                        "candidates at 1M requests it outgrew a 23 GB machine shared with "
                        "other work)")
    p.add_argument("--no-spark", action="store_true", help="run the DuckDB plans only")
    args = p.parse_args()
    global DUCKDB_MEMORY
    DUCKDB_MEMORY = args.duckdb_memory
    work = Path(args.work or tempfile.mkdtemp(prefix="mtf-bench-etl-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    now = job_transform(None, work)
    before = job_transform(args.baseline, work) if args.baseline else None
    results: list[dict] = []
    best = None
    for i, n in enumerate(sorted(args.requests)):
        bronze = work / f"bronze_{n}"
        t0 = time.perf_counter()
        if args.tile_from and n > args.tile_from and n % args.tile_from == 0:
            counts = tile_bronze(work / f"bronze_{args.tile_from}", n // args.tile_from, bronze)
        else:
            counts = bronze_day(n, bronze, seed=11)
        n_in = counts["raw_requests"] + counts["raw_exposures"] + counts["raw_feedback"]
        size_mb = sum(f.stat().st_size for f in bronze.rglob("*.parquet")) / 2**20
        print(f"== {n} requests: {counts} ({size_mb:.0f} MB Parquet, ready in "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)
        names = args.variants or list(SPARK_VARIANTS)
        # (row name, conf variant, transform or DuckDB plan, with candidates, next_candidates)
        runs: list[tuple[str, str, Callable | str, bool, bool]] = [] if args.no_spark else [
            (name, name, now, True, False)
            for name in (names if i == 0 or best is None else [best])]
        conf_now = best or names[-1]
        # interleaved, so that the load of the moment hits the engines and plans alike
        plan_names = {"join": "next list by self join", "lead": "next list by lead()"}
        duck = [(f"duckdb, {plan_names[p.split('+')[0]]}" + (", candidates" if "+" in p else ""),
                 "", p, "+" in p, False) for p in args.duckdb_plans]
        if duck:
            runs.append(duck.pop(0))
        if before is not None:
            runs.append((f"{conf_now}, job as of {args.baseline}", conf_now, before,
                         before.candidates, False))
        if duck:
            runs.append(duck.pop(0))
        if args.next_candidates:
            runs.append((f"{conf_now}, data.next_candidates", conf_now, now, True, True))
        runs.extend(duck)
        for name, conf_name, what, cand, next_cand in runs:
            if isinstance(what, str):
                r = timed(run_duckdb, bronze, work / f"duckdb_out_{n}.parquet", what,
                          children=False)
                (work / f"duckdb_out_{n}.parquet").unlink(missing_ok=True)
            else:
                r = timed(run_spark, bronze, work / f"spark_out_{n}", SPARK_VARIANTS[conf_name],
                          what, next_cand, children=True)
                shutil.rmtree(work / f"spark_out_{n}", ignore_errors=True)
            results.append({"requests": n, "engine": name, "candidates": cand, **r,
                            "input_rows": n_in, "candidate_rows": counts["raw_candidates"],
                            "rows_per_s": round(n_in / r["wall_s"]),
                            "bronze_mb": round(size_mb)})
            print(results[-1], flush=True)
            save(args.out, results)
            if i == 0 and best is None and name == names[-1]:
                spark_rows = [r for r in results if r["requests"] == n]
                best = min(spark_rows, key=lambda r: r["wall_s"])["engine"]
    from tabulate import tabulate

    print(tabulate([[r["requests"], r["engine"], r["input_rows"], r["rows_out"], r["wall_s"],
                     r["rows_per_s"], r["peak_rss_mb"], r["out_bytes_per_row"], r["vs_duckdb"],
                     r["load_avg"]] for r in results],
                   headers=["requests", "engine", "input rows", "rows out", "wall s",
                            "input rows/s", "peak RSS MB", "bytes/row out", "x DuckDB",
                            "load"]))
    save(args.out, results)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
