"""Learner and serving benchmarks, each as ratios against a baseline measured in the same run.

    make bench           # or: python bench/bench_learner.py --out bench/results/learner.json

1. critic ensemble, forward + backward: 20 critics as one batched ensemble vs a Python loop
   of 20 separate critics vs ONE critic (baseline), at the paper size (256-256 critics, 256
   lists x 5 pairs) and the demo size (128-128, 128 lists x 5 pairs);
2. serving latency of one request of 500 candidates on one thread (median, p99, p99.9):
   the pair-level actor (`forward`, and `forward_request`, its user tower once per
   request) and the factorized actor (eager, TorchScript, onnxruntime) against the
   user-level actor (one call per request, the baseline); the process pinned to one CPU,
   each case answering blocks of consecutive requests, the load average recorded, and
   the p99 also over the requests the kernel did not preempt;
3. EnhancedRL.update throughput in request lists per second, demo and paper network sizes
   (configs/pipeline/demo.yaml, configs/pipeline/paper.yaml);
4. the same training steps fed by Petastorm from Parquet files of the enhanced_state schema
   (the loader as shipped, and without its prefetch thread) vs fed from in-memory tensors
   (baseline).

Everything runs on one torch thread (`--threads`), the CPU benchmarks interleave their
cases round by round, so that a neighbour's load hits every case alike. Compute benchmarks
(1, 3) report the thread's CPU time (robust on a shared machine), latency (2) and the
data-loading comparison (4) wall time, which is what a caller waits for. The JSON records
the load average at the start and the end: on a shared machine a p99 measures the
neighbours as much as the model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa  # before torch (model/loader.py)
import pyarrow.parquet as pq
import torch
from tabulate import tabulate
from torch import nn

from core import schema as S
from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.export import export_onnx, onnx_session
from model.loader import EnhancedStateLoader
from model.networks import CriticEnsemble, FactorizedPairActor, PairActor, UserActor
from pipeline.config import load_config

D, A, L = S.PAIR_STATE_DIM, S.ACTION_DIM, S.LIST_LEN
Row = dict[str, object]


def interleaved(cases: dict[str, Callable[[], object]], rounds: int, warmup: int = 2
                ) -> dict[str, list[float]]:
    """Thread CPU seconds per call of each case, measured round-robin (`rounds` rounds
    after `warmup`)."""
    out: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(warmup + rounds):
        for name, fn in cases.items():
            t = time.thread_time()
            fn()
            if r >= warmup:
                out[name].append(time.thread_time() - t)
    return out


def pct(v: list[float], p: float) -> float:
    s = sorted(v)
    return s[min(len(s) - 1, int(p * len(s)))]


# --- 1. critic ensemble ----------------------------------------------------------------------
def _critic_mlp(hidden: tuple[int, ...]) -> nn.Sequential:
    sizes = [D + A, *hidden, 1]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers += [nn.Linear(sizes[i], sizes[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def bench_ensemble(rounds: int) -> list[Row]:
    rows: list[Row] = []
    for size, hidden, lists in (("paper", (256, 256), 256), ("demo", (128, 128), 128)):
        m = lists * L
        s, a = torch.randn(m, D), torch.randn(m, A)
        x = torch.cat([s, a], -1)
        one = CriticEnsemble(1, 1, hidden=hidden)
        batched = CriticEnsemble(2, 10, hidden=hidden)
        loop = nn.ModuleList([_critic_mlp(hidden) for _ in range(20)])

        def step(fn: Callable[[], torch.Tensor], params: nn.Module) -> Callable[[], None]:
            def run() -> None:
                params.zero_grad(set_to_none=True)
                fn().sum().backward()
            return run

        res = interleaved({
            "one critic": step(lambda o=one, s=s, a=a: o(s, a), one),
            "20 critics, batched ensemble": step(lambda b=batched, s=s, a=a: b(s, a), batched),
            "20 critics, loop of modules": step(
                lambda lp=loop, x=x: torch.stack([c(x) for c in lp]), loop),
        }, rounds)
        base = statistics.median(res["one critic"])
        loop_t = statistics.median(res["20 critics, loop of modules"])
        for case, v in res.items():
            t = statistics.median(v)
            rows.append({"bench": f"critic fwd+bwd, {size} ({m} pairs, {hidden})",
                         "case": case, "median_ms": 1e3 * t, "baseline": "one critic",
                         "ratio": t / base, "vs_loop": t / loop_t})
    return rows


# --- 2. serving latency ----------------------------------------------------------------------
def blocks(cases: dict[str, Callable[[], object]], rounds: int, block: int,
           warmup: int = 10) -> dict[str, list[tuple[float, bool]]]:
    """(wall seconds, preempted) per call: each round runs every case for `block`
    consecutive requests (as a server answers one model's requests back to back), the first
    `warmup` of each block discarded (caches refilled after the other cases ran). A call
    is `preempted` when the kernel switched this thread out involuntarily during it
    (getrusage's ru_nivcsw): its time then includes a neighbour's time slice."""
    out: dict[str, list[tuple[float, bool]]] = {k: [] for k in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            for i in range(warmup + block):
                switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
                t = time.perf_counter()
                fn()
                dt = time.perf_counter() - t
                if i >= warmup:
                    preempted = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw > switches
                    out[name].append((dt, preempted))
    return out


def pin_to_one_cpu() -> int | None:
    """Pin this process to its last allowed CPU (no migration between cores mid-request);
    the CPU, or None where affinity cannot be set."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def bench_serving(rounds: int, block: int, workdir: Path, candidates: int = 500) -> list[Row]:
    torch.manual_seed(0)
    user = UserActor().eval()
    pair = PairActor().eval()
    fact = FactorizedPairActor().eval()
    xs = torch.randn(candidates, D)
    xs[:, :S.D_USER] = xs[:1, :S.D_USER]  # one request: one user block
    xu = torch.randn(1, S.USER_STATE_DIM)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript deprecation notice
        ts = {name: torch.jit.script(mod) for name, mod in
              (("user", user), ("pair", pair), ("fact", fact))}
    sessions = {}
    for name, mod, method in (("user", user, "forward"), ("pair", pair, "forward"),
                              ("pair_req", pair, "forward_request"),
                              ("fact", fact, "forward_request")):
        path = workdir / f"{name}.onnx"
        sha = export_onnx(mod, path, method=method)
        sessions[name] = onnx_session(path, sha, threads=1)
    xs_np, xu_np = xs.numpy(), xu.numpy()

    def ort(name: str, arr: np.ndarray) -> Callable[[], object]:
        return lambda: sessions[name].run(["action"], {"state": arr})

    cases = {
        "user-level actor, 1 call (eager)": lambda: user(xu),
        "user-level actor, 1 call (TorchScript)": lambda: ts["user"](xu),
        "user-level actor, 1 call (onnxruntime)": ort("user", xu_np),
        "pair-level actor, forward (eager)": lambda: pair(xs),
        "pair-level actor, forward (TorchScript)": lambda: ts["pair"](xs),
        "pair-level actor, forward (onnxruntime)": ort("pair", xs_np),
        "pair-level actor, forward_request (eager)": lambda: pair.forward_request(xs),
        "pair-level actor, forward_request (TorchScript)": lambda: ts["pair"].forward_request(xs),
        "pair-level actor, forward_request (onnxruntime)": ort("pair_req", xs_np),
        "factorized actor, forward_request (eager)": lambda: fact.forward_request(xs),
        "factorized actor, forward_request (TorchScript)": lambda: ts["fact"].forward_request(xs),
        "factorized actor, forward_request (onnxruntime)": ort("fact", xs_np),
    }
    load_before = os.getloadavg()
    cpu = pin_to_one_cpu()
    try:
        with torch.inference_mode():
            res = blocks(cases, rounds, block)
    finally:
        if cpu is not None:
            os.sched_setaffinity(0, range(os.cpu_count() or 1))
    load_after = os.getloadavg()
    rows = []
    for case, calls in res.items():
        runtime = case[case.rindex("(") + 1:-1]
        base = statistics.median(t for t, _ in res[f"user-level actor, 1 call ({runtime})"])
        v = [t for t, _ in calls]
        alone = [t for t, preempted in calls if not preempted]
        rows.append({"bench": f"serving, 1 thread, {candidates} candidates", "case": case,
                     "median_ms": 1e3 * statistics.median(v), "p99_ms": 1e3 * pct(v, 0.99),
                     "p999_ms": 1e3 * pct(v, 0.999), "requests": len(v),
                     "preempted_share": 1 - len(alone) / len(v),
                     "p99_not_preempted_ms": 1e3 * pct(alone, 0.99) if alone else None,
                     "baseline": f"user-level actor ({runtime})",
                     "ratio": statistics.median(v) / base, "pinned_cpu": cpu,
                     "loadavg_1m_before_after": [load_before[0], load_after[0]]})
    return rows


# --- 3. training throughput ------------------------------------------------------------------
def _learner_config(profile: str) -> EnhancedRLConfig:
    """The profile's learner config (configs/pipeline/<profile>.yaml over the defaults)."""
    return load_config(profile).rl


def random_batch(bs: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of the learner's contract: random states, full lists, 10% ended sessions."""
    done = (torch.rand(bs, generator=gen) < 0.1).float()
    return {"pair_state": torch.randn(bs, L, D, generator=gen),
            "action": torch.rand(bs, L, A, generator=gen) * 2 - 1,
            "box_center": torch.rand(bs, L, A, generator=gen) * 1.6 - 0.8,
            "mask": torch.ones(bs, L), "reward": torch.rand(bs, 2, L, generator=gen),
            "next_pair_state": torch.randn(bs, L, D, generator=gen),
            "next_box_center": torch.rand(bs, L, A, generator=gen) * 1.6 - 0.8,
            "next_mask": (1 - done)[:, None].expand(bs, L).contiguous(), "done": done}


def bench_training(rounds: int) -> list[Row]:
    rows: list[Row] = []
    gen = torch.Generator().manual_seed(0)
    for profile in ("demo", "paper"):
        cfg = _learner_config(profile)
        learner = EnhancedRL(cfg)
        batch = random_batch(cfg.batch_size, gen)
        res = interleaved({"update": lambda lr=learner, b=batch: lr.update(b)}, rounds)
        t = statistics.median(res["update"])
        rows.append({"bench": "EnhancedRL.update (critic step + actor every 2nd)",
                     "case": f"{profile}: critics {cfg.critic_hidden}, batch {cfg.batch_size}",
                     "median_ms": 1e3 * t, "lists_per_s": cfg.batch_size / t})
    return rows


# --- 4. Petastorm vs in-memory ---------------------------------------------------------------
def write_snapshot(directory: Path, files: int, rows_per_file: int, seed: int = 0) -> list[str]:
    """Parquet files with the enhanced_state columns (sql/ddl; ds / split are partition
    directories in Delta, not columns of its files), random values of the right widths."""
    rng = np.random.default_rng(seed)
    paths = []
    for f in range(files):
        n = rows_per_file
        done = (rng.random(n) < 0.1).astype(np.float32)

        def arr(width: int, values: np.ndarray | None = None, n: int = n) -> pa.Array:
            v = rng.standard_normal((n, width)).astype(np.float32) if values is None else values
            return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), width).cast(
                pa.list_(pa.float32()))

        ones = np.ones((n, L), np.float32)
        table = pa.table({
            "request_id": [f"r{f}-{i}" for i in range(n)],
            "session_id": [f"s{f}-{i // 5}" for i in range(n)],
            "user_id": pa.array(rng.integers(0, 10_000, n), pa.int64()),
            "request_index": pa.array(np.arange(n) % 5, pa.int32()),
            "n_items": pa.array(np.full(n, L), pa.int32()),
            "mask": arr(L, ones),
            "item_ids": pa.FixedSizeListArray.from_arrays(
                pa.array(rng.integers(0, 3000, n * L), pa.int64()), L).cast(
                pa.list_(pa.int64())),
            "pair_state": arr(L * D), "action": arr(L * A, np.clip(
                rng.standard_normal((n, L * A)), -1, 1).astype(np.float32)),
            "box_center": arr(L * A, np.zeros((n, L * A), np.float32)),
            "reward_watch": arr(L), "reward_other": arr(L), "valid": arr(L, ones),
            "next_pair_state": arr(L * D),
            "next_box_center": arr(L * A, np.zeros((n, L * A), np.float32)),
            "next_mask": arr(L, ones * (1 - done)[:, None]),
            "done": pa.array(done, pa.float32()),
        })
        path = directory / f"part-{f:05d}.parquet"
        pq.write_table(table, path, row_group_size=rows_per_file)
        paths.append(str(path))
    return paths


def bench_loader(workdir: Path, steps: int, rounds: int) -> list[Row]:
    """One epoch of `steps` demo-size updates: batches read by the Petastorm loader (reader
    start and shutdown included) vs the same number of updates on batches held in memory."""
    cfg = _learner_config("demo")
    bs = cfg.batch_size
    assert steps % 4 == 0, "4 files of steps / 4 batches each"
    files = write_snapshot(workdir, files=4, rows_per_file=bs * steps // 4)
    loader = EnhancedStateLoader(files=files, batch_size=bs, seed=0)
    on_demand = EnhancedStateLoader(files=files, batch_size=bs, seed=0, prefetch_chunks=0)
    in_memory = list(loader.epoch(0))
    assert len(in_memory) == steps and all(b["done"].shape[0] == bs for b in in_memory)

    def train(batches: Iterable[dict[str, torch.Tensor]]) -> tuple[float, float, float]:
        """(wall seconds, process CPU seconds: all threads, the reader's included, CPU
        seconds of this thread: the learner's critical path, robust to a neighbour's load)"""
        learner = EnhancedRL(cfg)
        t, c, m = time.perf_counter(), time.process_time(), time.thread_time()
        n = 0
        for batch in batches:
            learner.update(batch)
            n += 1
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        assert n == steps, n
        return wall, cpu, time.thread_time() - m

    train(in_memory)  # warm-up: allocator, kernels, page cache of the files
    res: dict[str, list[tuple[float, float, float]]] = {
        "in-memory tensors": [], "Petastorm reader": [],
        "Petastorm reader, no prefetch thread": []}
    for epoch in range(1, rounds + 1):  # interleaved: a neighbour's load hits all alike
        res["in-memory tensors"].append(train(in_memory))
        res["Petastorm reader"].append(train(loader.epoch(epoch)))
        res["Petastorm reader, no prefetch thread"].append(train(on_demand.epoch(epoch)))
    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in res.items()}
    base = "in-memory tensors"
    return [{"bench": f"one epoch of {steps} updates (demo size, batch {bs}), wall",
             "case": case, "median_ms": 1e3 * wall / steps, "baseline": base,
             "ratio": wall / med[base][0], "cpu_ratio": cpu / med[base][1],
             "main_thread_cpu_ratio": main / med[base][2], "lists_per_s": steps * bs / wall}
            for case, (wall, cpu, main) in med.items()]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="bench/results/learner.json")
    p.add_argument("--rounds", type=int, default=12, help="rounds of the compute benchmarks")
    p.add_argument("--latency-rounds", type=int, default=20,
                   help="rounds of the serving benchmark; each runs every case --block times")
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--loader-steps", type=int, default=60, help="a multiple of 4")
    p.add_argument("--loader-rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # petastorm on pyarrow 14
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0, load_start = time.perf_counter(), os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        rows = (bench_ensemble(args.rounds)
                + bench_serving(args.latency_rounds, args.block, Path(tmp))
                + bench_training(args.rounds)
                + bench_loader(Path(tmp), args.loader_steps, args.loader_rounds))
    for bench in dict.fromkeys(r["bench"] for r in rows):  # one table per benchmark
        group = [{k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in r.items()
                  if k != "bench"} for r in rows if r["bench"] == bench]
        print(f"\n{bench}\n" + tabulate(group, headers="keys"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "processor": platform.processor(),
                               "cpus": os.cpu_count(), "torch": torch.__version__,
                               "threads": args.threads, "loadavg_start": load_start,
                               "loadavg_end": os.getloadavg(),
                               "seconds": time.perf_counter() - t0, "results": rows}, indent=1))
    print(f"\nwrote {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
