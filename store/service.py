"""The long-lived Spark service of one warehouse: a Spark Connect server that every job, the
trainer's snapshot lookup, `mtf sql`, the views and the report reach as clients (`sc://`).

One JVM holds the warehouse's catalog (the embedded Derby metastore admits one JVM at a
time), so any number of client processes work at once, and a step pays a gRPC connection
(well under a second) instead of a JVM, Ivy resolution, metastore and Delta start-up
(30-45 s a step through `spark-submit` on two cores).

The server is `spark-submit --class org.apache.spark.sql.connect.service.SparkConnectServer`
(the `spark-connect` jar ships with pyspark) with the same Spark conf as every job
(`store.spark_conf`) and Delta's session extension and catalog; SQL (MERGE, UPDATE,
DESCRIBE HISTORY, replaceWhere writes) covers what the jobs need from Delta, so no Delta
Connect plugin is required. Its state file `<metastore>/spark-connect.json` says where it
listens; `connect_url` finds it there (config `spark.connect`: `auto`, `off` or a URL).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from core.errors import UserError
from store.config import HasStorage, check_connect
from store.spark_conf import delta_package, spark_conf

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
STATE_FILE = "spark-connect.json"
LOG_FILE = "spark-connect.log"
BIN_DIR = Path(sys.executable).parent


class ServiceError(UserError, RuntimeError):
    """The Spark service did not start, or a configured one cannot be reached."""


@dataclass
class ServiceState:
    """What `<metastore>/spark-connect.json` records about a running server."""

    pid: int
    port: int
    host: str
    warehouse: str
    log: str
    started_at: float

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"


def _state_path(cfg: HasStorage) -> Path:
    return Path(cfg.storage.metastore_path()) / STATE_FILE


def read_state(cfg: HasStorage) -> ServiceState | None:
    """The recorded server of this warehouse, if the file is there and readable."""
    try:
        return ServiceState(**json.loads(_state_path(cfg).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _listening(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _is_server(pid: int) -> bool:
    """The process is a Spark Connect server (not another process that got a recorded
    server's pid after it died). Where /proc is missing, a live pid is taken as one."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return _alive(pid) and not Path("/proc/self").exists()
    except OSError:
        return False
    return SERVER_CLASS.encode() in cmdline


def running(cfg: HasStorage) -> ServiceState | None:
    """The server of this warehouse if its process is alive and its port answers."""
    st = read_state(cfg)
    if st and _is_server(st.pid) and _listening(st.host, st.port):
        return st
    return None


def connect_mode(cfg: HasStorage) -> str:
    """`spark.connect`, or `MTF_SPARK_CONNECT` when set: `auto`, `off` or an sc:// URL."""
    try:
        return check_connect(os.environ.get("MTF_SPARK_CONNECT", cfg.spark.connect).strip())
    except ValueError as e:
        raise ServiceError(str(e)) from None


def connect_url(cfg: HasStorage) -> str | None:
    """The Spark Connect URL a job should use, or None for a classic (in-process JVM or
    spark-submit) session: the configured URL, or with `auto` the warehouse's running
    service, if any (`connect_mode`)."""
    mode = connect_mode(cfg)
    if mode == "off":
        return None
    if mode.startswith("sc://"):
        return mode
    st = running(cfg)
    return st.url if st else None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_command(cfg: HasStorage, host: str, port: int) -> list[str]:
    """The spark-submit command line of the server (the jobs' conf, bound to `host`)."""
    conf = spark_conf(cfg)
    conf.update({
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        # a client's idle session is released after this long; the server stays
        "spark.connect.session.manager.defaultSessionTimeout": "60min",
    })
    cmd = [str(BIN_DIR / "spark-submit"), "--class", SERVER_CLASS, "--name", "mtf-spark-service",
           "--master", cfg.spark.master, "--packages", delta_package()]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    return [*cmd, "spark-internal"]


@contextlib.contextmanager
def _lock(cfg: HasStorage):
    """One start or stop at a time per warehouse (two `mtf spark start` never race)."""
    path = Path(cfg.storage.metastore_path())
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".spark-connect.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def start(cfg: HasStorage, port: int = 0, host: str = "127.0.0.1",
          timeout_s: float = 180.0) -> tuple[ServiceState, bool]:
    """Start this warehouse's server unless one runs; returns (state, started_now).

    Port 0 picks a free one (several warehouses, e.g. test workers, each get their own). The
    server is detached (its own session), logs to `<metastore>/spark-connect.log`, and is
    ready when its port answers."""
    with _lock(cfg):
        st = running(cfg)
        if st:
            return st, False
        if not cfg.storage.is_remote():
            Path(cfg.storage.warehouse_path()).mkdir(parents=True, exist_ok=True)
        meta = Path(cfg.storage.metastore_path())
        port = port or _free_port(host)
        log_path = meta / LOG_FILE
        env = dict(os.environ, PYSPARK_PYTHON=sys.executable,
                   PYSPARK_DRIVER_PYTHON=sys.executable,
                   PYTHONPATH=os.pathsep.join(p for p in (str(Path(__file__).parents[1]),
                                                          os.environ.get("PYTHONPATH", "")) if p))
        env.pop("PYSPARK_GATEWAY_PORT", None)
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(server_command(cfg, host, port), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, cwd=meta, start_new_session=True)
        st = ServiceState(pid=proc.pid, port=port, host=host,
                          warehouse=cfg.storage.warehouse_path(), log=str(log_path),
                          started_at=time.time())
        deadline = time.monotonic() + timeout_s
        while not _listening(host, port):
            if proc.poll() is not None:
                raise ServiceError(f"the Spark service exited with {proc.returncode} while "
                                   f"starting; see {log_path}")
            if time.monotonic() > deadline:
                _terminate(proc.pid)
                raise ServiceError(f"the Spark service did not listen on {host}:{port} within "
                                   f"{timeout_s:.0f} s; see {log_path}")
            time.sleep(0.25)
        _state_path(cfg).write_text(json.dumps(asdict(st)))
        return st, True


def _terminate(pid: int, grace_s: float = 30.0) -> None:
    """SIGTERM the server's process group, SIGKILL after the grace period."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def stop(cfg: HasStorage) -> ServiceState | None:
    """Stop this warehouse's server; returns what was stopped (None: nothing ran)."""
    with _lock(cfg):
        st = read_state(cfg)
        if st and _is_server(st.pid):
            _terminate(st.pid)
        else:
            st = None
        _state_path(cfg).unlink(missing_ok=True)
        return st
