"""`mtf`: one command line for every step, the whole day, the demo and analyst SQL.

    mtf simulate --ds 2026-01-01          # bronze logs for a day (served by the published policy)
    mtf validate-logs --ds 2026-01-01     # landed logs -> bronze + quarantine + dq_metrics
    mtf build-state --ds 2026-01-01       # enhanced_state + user_state
    mtf train --ds 2026-01-01             # EnhancedRL from a pinned Delta snapshot
    mtf evaluate|gate|publish|online-metrics|report --ds 2026-01-01
    mtf maintenance --ds 2026-01-01       # OPTIMIZE + VACUUM keeping the training window
    mtf rollback [--version V] --reason "..."  # take a published policy out of service
    mtf experiment --out runs/experiment --ds 2026-11-29  # every learner, simulator truth
    mtf run --ds 2026-01-01 [--simulate]  # the whole day in one process (no Airflow)
    mtf demo --days 3                     # N consecutive days through the real Airflow DAGs
    mtf sql "SELECT * FROM mtf.offline_metrics" ["<another query>" ...] [--format json]
    mtf spark start|status|stop           # the warehouse's long-lived Spark (Connect) service
    mtf mlflow [--port 5000]              # MLflow's UI on the tracking store (make mlflow)
    mtf airflow -- dags list              # the airflow CLI with the project's environment

Every step takes --profile (default $MTF_PROFILE or demo) and --set section.field=value.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.ds import day_range
from core.errors import UserError
from core.settings import PROJECT_ROOT
from pipeline.config import PipelineConfig
from pipeline.entry import config_arguments, ds_arg, load_config_or_exit

if TYPE_CHECKING:
    from mtf.progress import DagProgress

STEPS = ("simulate", "check-logs", "validate-logs", "build-state", "train", "evaluate", "gate",
         "publish", "online-metrics", "report", "maintenance", "rollback", "views", "experiment")
DAILY = ["check-logs", "validate-logs", "build-state", "train", "evaluate", "gate", "publish",
         "online-metrics", "report"]
BIN_DIR = Path(sys.executable).parent


def step_main(step: str) -> Callable[[Sequence[str] | None], int]:
    """The `main(argv)` of a step, imported when the step runs (a step pays only for its own
    imports: `mtf gate` does not load torch, `mtf sql` loads neither torch nor the jobs)."""
    if step == "simulate":
        from jobs.simulate import main
    elif step == "check-logs":
        from jobs.check_logs import main
    elif step == "validate-logs":
        from jobs.validate_logs import main
    elif step == "build-state":
        from jobs.build_enhanced_state import main
    elif step == "train":
        from jobs.train import main
    elif step == "evaluate":
        from jobs.evaluate import main
    elif step == "gate":
        from jobs.gate import main
    elif step == "publish":
        from jobs.publish import main
    elif step == "online-metrics":
        from jobs.online_metrics import main
    elif step == "report":
        from jobs.report import main
    elif step == "maintenance":
        from jobs.maintenance import main
    elif step == "rollback":
        from jobs.rollback import main
    elif step == "views":
        from jobs.views import main
    elif step == "experiment":
        from mtf.experiment import main
    else:
        raise KeyError(f"unknown step {step!r}; known: {', '.join(STEPS)}")
    return main


def _run_step(step: str, argv: list[str]) -> int:
    return step_main(step)(argv)


def airflow_env() -> dict[str, str]:
    """Environment for the airflow CLI: project DAGs, local metadata DB, Spark connection."""
    env = dict(os.environ)
    home = Path(env.get("MTF_AIRFLOW_HOME", PROJECT_ROOT / ".airflow"))
    home.mkdir(parents=True, exist_ok=True)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": env.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO"),
        "PATH": f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}".rstrip(os.pathsep),
    })
    # Sized for a small machine (one task runs at a time in a day's chain; Airflow's defaults
    # start 32 executor workers and 4 API workers); a setting in the environment wins.
    for key, value in {"AIRFLOW__CORE__PARALLELISM": str(max(2, 2 * (os.cpu_count() or 1))),
                       "AIRFLOW__API__WORKERS": "1",
                       "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1"}.items():
        env.setdefault(key, value)
    # The Spark connection: local by default; point it at a cluster by setting this variable
    # (or defining the `mtf_spark` connection in Airflow) -- never in the repository.
    env.setdefault("AIRFLOW_CONN_MTF_SPARK", json.dumps({
        "conn_type": "spark", "host": env.get("MTF_SPARK_MASTER", "local[2]"),
        "extra": {"deploy-mode": "client", "spark-binary": "spark-submit"}}))
    return env


def airflow(args: Sequence[str], check: bool = True, capture: bool = False
            ) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN_DIR / "airflow"), *args], env=airflow_env(), check=check,
                          text=True, capture_output=capture)


def demo_table(spark, db: str, days: list[str]) -> list[dict]:
    """Day-by-day: serving policy, online UVC/UDT of its arm and the lift against the
    holdout arm, candidate, NCIS, MTF-GAUC, decision."""
    inlist = ", ".join(f"'{d}'" for d in days)
    q = f"""
    WITH cand AS (
      SELECT ds, model_version,
             max(CASE WHEN metric = 'ncis/sigma_0.1' THEN value END) AS ncis,
             max(CASE WHEN metric = 'ncis/sigma_0.1' THEN ci_low END) AS ncis_lo,
             max(CASE WHEN metric = 'ncis/sigma_0.1' THEN ci_high END) AS ncis_hi,
             max(CASE WHEN metric = 'mtf_gauc' THEN value END) AS gauc,
             max(CASE WHEN metric = 'sim/uvc' THEN value END) AS sim_uvc
      FROM {db}.offline_metrics WHERE role = 'candidate' AND ds IN ({inlist})
      GROUP BY ds, model_version),
    cur AS (
      SELECT ds, max(CASE WHEN metric = 'ncis/sigma_0.1' THEN value END) AS cur_ncis,
             max(CASE WHEN metric = 'mtf_gauc' THEN value END) AS cur_gauc,
             max(CASE WHEN metric = 'sim/uvc' THEN value END) AS cur_sim_uvc
      FROM {db}.offline_metrics WHERE role = 'current' AND ds IN ({inlist}) GROUP BY ds)
    SELECT o.ds, o.policy_version AS serving_policy, o.uvc, o.udt,
           o.uvc_lift, o.uvc_lift_low, o.uvc_lift_high,
           c.model_version AS candidate, c.ncis, c.ncis_lo, c.ncis_hi, c.gauc, c.sim_uvc,
           cur.cur_ncis, cur.cur_gauc, cur.cur_sim_uvc, r.status
    FROM {db}.online_metrics o
    LEFT JOIN cand c ON c.ds = o.ds
    LEFT JOIN cur ON cur.ds = o.ds
    LEFT JOIN {db}.policy_registry r ON r.model_version = c.model_version
    WHERE o.ds IN ({inlist}) AND o.arm = 'current' ORDER BY o.ds"""
    return [r.asDict() for r in spark.sql(q).collect()]


def format_demo_table(rows: list[dict]) -> str:
    from tabulate import tabulate

    from core.ab import lift_text

    def f(v, p=3):
        return "-" if v is None else f"{v:.{p}f}"

    def lift(r):
        return "-" if r["uvc_lift"] is None else lift_text(r, "uvc", digits=1)

    table = [[r["ds"], r["serving_policy"], f(r["uvc"], 2), f(r["udt"], 0), lift(r),
              r["candidate"],
              f"{f(r['ncis'])} [{f(r['ncis_lo'])}, {f(r['ncis_hi'])}]", f(r["cur_ncis"]),
              f(r["gauc"], 4), f(r["cur_gauc"], 4), f(r["sim_uvc"], 2), f(r["cur_sim_uvc"], 2),
              r["status"]] for r in rows]
    return tabulate(table, headers=[
        "day", "serving policy", "UVC", "UDT (s)", "UVC vs holdout [95% CI]", "candidate",
        "NCIS s=0.1 [95% CI]",
        "NCIS current", "MTF-GAUC", "GAUC current", "sim UVC", "sim UVC current", "decision"])


def ensure_service(cfg: PipelineConfig, out=sys.stdout) -> str | None:
    """The warehouse's Spark service for a multi-step command: its URL, started when none
    runs (config `spark.connect: auto`); None when the config says `off` (classic Spark)."""
    from store import service

    url = service.connect_url(cfg)
    if url or service.connect_mode(cfg) != "auto":
        return url
    t0 = time.perf_counter()
    st, _ = service.start(cfg)
    print(f"== Spark service started at {st.url} in {time.perf_counter() - t0:.1f} s "
          f"(stays up for `mtf sql`; `mtf spark stop` stops it)", file=out, flush=True)
    return st.url


def run_dag(dag_id: str, ds: str, verbose: bool, tty: bool) -> DagProgress:
    """`airflow dags test <dag_id> <ds>`, its output read as it comes (progress lines)."""
    from mtf.progress import DagProgress

    progress = DagProgress(dag_id, ds, tty=tty)
    with subprocess.Popen([str(BIN_DIR / "airflow"), "dags", "test", dag_id, ds],
                          env=airflow_env(), text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if verbose:
                sys.stdout.write(line)
            progress.feed(line.rstrip("\n"))
    if proc.returncode != 0 and progress.run_state is None:
        progress.run_state = f"exit {proc.returncode}"
    return progress


def run_on_scheduler(cfg: PipelineConfig, days: list[str], tasks: list, tty: bool) -> bool:
    """Each day's mtf_simulate and mtf_daily runs, triggered on Airflow's scheduler
    (mtf/scheduler.py) one after the other; False when a run failed."""
    from mtf.scheduler import Airflow, RunWatch

    t0 = time.perf_counter()
    af = Airflow.start()
    try:
        print(f"== Airflow scheduler up in {time.perf_counter() - t0:.0f} s; watch the runs at "
              f"{af.base} (login in {af.home / 'simple_auth_manager_passwords.json.generated'})",
              flush=True)
        dags = ("mtf_simulate", "mtf_daily")
        for dag_id in dags:
            af.wait_for_dag(dag_id)
        was_paused = {d: af.is_paused(d) for d in dags}
        try:
            for d in dags:
                af.set_paused(d, False)
            for ds in days:
                for dag_id in dags:
                    run_id = af.trigger(dag_id, f"demo__{ds}", ds,
                                        {"profile": cfg.profile, "ds": ds})
                    print(f"== {dag_id} run {run_id}", flush=True)
                    watch = RunWatch(af, dag_id, run_id, ds, tty=tty)
                    watch.wait(timeout=6 * 3600)
                    tasks += watch.tasks
                    if dag_id == "mtf_daily":
                        report = cfg.storage.report_dir(ds) / "report.html"
                        af.set_note(dag_id, run_id, f"Nightly report of {ds}: "
                                                    f"[{report}](file://{report})")
                    if watch.failed:
                        print(watch.failure_log_tail(), file=sys.stderr)
                        print(f"!! {dag_id} run {run_id} ended {watch.state}",
                              file=sys.stderr)
                        return False
        finally:
            for d, paused in was_paused.items():
                af.set_paused(d, paused)
    finally:
        af.stop()
    return True


def cmd_demo(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    from mtf.progress import task_table

    t0 = time.perf_counter()
    days = day_range(args.start, args.days)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    if not args.dags_test and max(days) > today:  # the scheduler never runs a future date
        raise UserError(f"day {max(days)} is in the future and Airflow's scheduler "
                        f"runs no logical date after now ({today}); pick earlier days or "
                        f"run them with --dags-test")
    if args.no_service:
        os.environ["MTF_SPARK_CONNECT"] = "off"  # every task: spark-submit / its own JVM
    url = ensure_service(cfg)  # a service that cannot start is a UserError: one line (main)
    print(f"== Spark: {'Connect client of ' + url if url else 'spark-submit per step'}",
          flush=True)
    airflow(["db", "migrate"], capture=True)
    tty = sys.stdout.isatty()
    tasks: list = []
    if args.dags_test:
        for ds in days:
            for dag_id in ("mtf_simulate", "mtf_daily"):
                print(f"== airflow dags test {dag_id} {ds}", flush=True)
                run = run_dag(dag_id, ds, args.verbose, tty)
                tasks += run.tasks
                if run.failed:
                    if not args.verbose:
                        print("\n".join(run.tail), file=sys.stderr)
                    print(f"!! {dag_id} failed for {ds} (run state {run.run_state})",
                          file=sys.stderr)
                    return 1
    elif not run_on_scheduler(cfg, days, tasks, tty):
        return 1
    from store.spark import get_spark

    spark = get_spark(cfg, "mtf-demo-report")
    rows = demo_table(spark, cfg.storage.database, days)
    print()
    print(format_demo_table(rows))
    print()
    print(task_table(tasks))
    print(f"\ndemo: {len(days)} simulated days through Airflow in "
          f"{time.perf_counter() - t0:.0f} s (warehouse {cfg.storage.warehouse_path()})")
    if len(rows) != len(days):
        print(f"!! expected {len(days)} days in online_metrics, found {len(rows)}", file=sys.stderr)
        return 1
    return 0


def cmd_run(args: argparse.Namespace, passthrough: list[str]) -> int:
    steps = (["simulate"] if args.simulate else []) + DAILY
    for step in steps:
        extra = ["--no-progress"] if step == "train" and args.no_progress else []
        print(f"== {step} {args.ds}", flush=True)
        rc = _run_step(step, ["--ds", args.ds, *passthrough, *extra])
        if rc:
            return rc
    return 0


def cmd_sql(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    from tabulate import tabulate

    from store.spark import get_spark
    from store.views import QueryError, run_query

    metastore = Path(cfg.storage.metastore_path())
    if not (metastore / "metastore_db").exists():  # a mistyped MTF_WAREHOUSE, not a new one
        print(f"mtf sql: no catalog at {metastore} (warehouse "
              f"{cfg.storage.warehouse_path()}): run a day first (mtf demo, mtf run) or point "
              f"MTF_WAREHOUSE / MTF_METASTORE_DIR at an existing warehouse", file=sys.stderr)
        return 2
    spark = get_spark(cfg, "mtf-sql")  # reads only: the jobs create the tables and views
    for query in args.query:
        try:
            columns, rows = run_query(spark, query, args.limit)
        except QueryError as e:  # a typo in SQL: Spark's message, not a JVM trace
            print(f"mtf sql: {e}", file=sys.stderr)
            return 1
        if args.format == "json":  # one JSON line per query
            print(json.dumps([r.asDict(recursive=True) for r in rows], default=str), flush=True)
        else:
            print(tabulate([list(r) for r in rows], headers=columns), flush=True)
    return 0


def cmd_spark(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    """start | status | stop the warehouse's Spark service (store/service.py)."""
    from store import service

    if args.action == "start":
        st, new = service.start(cfg, port=args.port)
        print(f"Spark service {'started' if new else 'already running'}: {st.url} "
              f"(pid {st.pid}, warehouse {st.warehouse}, log {st.log})")
        return 0
    if args.action == "stop":
        stopped = service.stop(cfg)
        print(f"Spark service stopped (pid {stopped.pid})" if stopped
              else "Spark service: not running")
        return 0
    st = service.running(cfg)
    if not st:
        print(f"Spark service: not running (warehouse {cfg.storage.warehouse_path()}); jobs "
              f"start their own Spark")
        return 3
    print(f"Spark service: running at {st.url} (pid {st.pid}, up "
          f"{time.time() - st.started_at:.0f} s, warehouse {st.warehouse}, log {st.log})")
    return 0


def mlflow_ui_command(cfg: PipelineConfig, port: int) -> list[str] | None:
    """The `mlflow server` command line of the UI on the config's local tracking store
    (127.0.0.1 only, one worker), or None when the store is a tracking server (its own UI)."""
    from store.config import is_local_store

    uri = cfg.tracking.tracking_uri(cfg.storage)
    if not is_local_store(uri):
        return None
    artifacts = cfg.tracking.artifact_location(cfg.storage)
    assert artifacts is not None
    return [str(BIN_DIR / "mlflow"), "server", "--backend-store-uri", uri,
            "--default-artifact-root", artifacts, "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1"]


def cmd_mlflow(args: argparse.Namespace, cfg: PipelineConfig) -> int:
    """MLflow's UI on the tracking store: runs, metrics, artifacts and the registered model
    with its `champion` alias (store/tracking.py). Runs until Ctrl-C (never returns)."""
    uri = cfg.tracking.tracking_uri(cfg.storage)
    cmd = mlflow_ui_command(cfg, args.port)
    if cmd is None:
        print(f"MLflow: the tracking store is the server {uri}: its UI is there")
        return 0
    from store.tracking import prepare_store

    prepare_store(uri)  # the store may not exist before the first training
    print(f"MLflow UI: http://127.0.0.1:{args.port}  (store {uri}; Ctrl-C ends it)",
          flush=True)
    os.execv(cmd[0], cmd)  # the server in this process: Ctrl-C and SIGTERM reach it


def main(argv: Sequence[str] | None = None) -> int:
    """`mtf ...`: an error the person can act on (core.errors.UserError: a missing
    evaluation, a hard data rule, a Spark service that does not start, ...) is one line and
    exit 2; anything unexpected keeps its traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except UserError as e:
        cmd = argv[0] if argv else ""
        print(f"mtf {cmd}: {type(e).__name__}: {e}".replace(" : ", ": "), file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mtf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for step in STEPS:
        sub.add_parser(step, help=f"run step {step} (see `mtf {step} --help`)",
                       add_help=False)
    r = sub.add_parser("run", help="the whole day in one process")
    r.add_argument("--ds", required=True, type=ds_arg)
    r.add_argument("--simulate", action="store_true", help="simulate the day's logs first")
    r.add_argument("--no-progress", action="store_true")
    d = sub.add_parser("demo", help="N simulated days through the Airflow DAGs")
    d.add_argument("--days", type=int, default=3)
    d.add_argument("--start", default="2026-01-01", type=ds_arg)
    d.add_argument("--profile", default=None,
                   help="pipeline profile of the report query (the DAGs' tasks take "
                        "$MTF_PROFILE)")
    d.add_argument("--verbose", action="store_true",
                   help="echo Airflow's output (with --dags-test)")
    d.add_argument("--dags-test", action="store_true",
                   help="run each DAG in-process with `airflow dags test` instead of on the "
                        "scheduler (faster, but the UI then shows no task log)")
    d.add_argument("--no-service", action="store_true",
                   help="no Spark service: each Spark step through spark-submit (its own JVM)")
    s = sub.add_parser("sql", help="Spark SQL against the catalog")
    s.add_argument("query", nargs="+", help="one or more SQL statements")
    config_arguments(s)
    s.add_argument("--limit", type=int, default=1000)
    s.add_argument("--format", choices=["table", "json"], default="table")
    sp = sub.add_parser("spark", help="start | status | stop the warehouse's Spark service")
    sp.add_argument("action", choices=["start", "status", "stop"])
    sp.add_argument("--port", type=int, default=0, help="port to listen on (start; default: "
                                                        "a free one, recorded for clients)")
    config_arguments(sp)
    m = sub.add_parser("mlflow", help="MLflow's UI on the tracking store (127.0.0.1)")
    m.add_argument("--port", type=int, default=int(os.environ.get("MTF_MLFLOW_PORT", "5000")),
                   help="port to listen on (default: $MTF_MLFLOW_PORT or 5000)")
    config_arguments(m)
    a = sub.add_parser("airflow", help="airflow CLI with the project's environment")
    a.add_argument("args", nargs=argparse.REMAINDER)
    if argv and argv[0] in STEPS:
        return _run_step(argv[0], argv[1:])
    args, rest = p.parse_known_args(argv)
    if args.cmd == "run":
        return cmd_run(args, rest)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.cmd in ("demo", "sql", "spark", "mlflow"):  # the config once, before any work:
        cfg = load_config_or_exit(p, args.profile, getattr(args, "overrides", []))  # a bad
        return {"demo": cmd_demo, "sql": cmd_sql, "spark": cmd_spark,  # one is a line
                "mlflow": cmd_mlflow}[args.cmd](args, cfg)
    if args.cmd == "airflow":
        extra = args.args[1:] if args.args[:1] == ["--"] else args.args
        return airflow(extra, check=False).returncode
    p.error(f"unknown command {args.cmd}")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
