"""Learner micro-benchmarks, as ratios against a baseline measured in the same run.

    make bench           # or: python bench/bench_learner.py --out bench/results/learner.json

1. critic ensemble: 20 critics as one batched layer vs a Python loop of 20 separate
   critics vs ONE critic (forward + backward on a batch of 256 lists x 5 pairs);
2. pair-level actor latency on one request of 500 candidates, one thread (p50 / p99),
   vs a user-level actor call;
3. EnhancedRL update throughput (request lists per second) at the demo and paper sizes.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from tabulate import tabulate
from torch import nn

from model.config import EnhancedRLConfig
from model.enhanced_rl import EnhancedRL
from model.networks import CriticEnsemble, PairActor, UserActor
from mtf import schema as S

D, A, L = S.PAIR_STATE_DIM, S.ACTION_DIM, S.LIST_LEN


def timeit(fn, repeat: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def bench_ensemble(repeat: int) -> list[dict]:
    m = 256 * L
    s, a = torch.randn(m, D), torch.randn(m, A)
    batched = CriticEnsemble(2, 10, hidden=(256, 256))
    one = CriticEnsemble(1, 1, hidden=(256, 256))
    loop = nn.ModuleList([nn.Sequential(nn.Linear(D + A, 256), nn.ReLU(), nn.Linear(256, 256),
                                        nn.ReLU(), nn.Linear(256, 1)) for _ in range(20)])

    def step(fn):
        def run():
            fn().sum().backward()
        return run

    x = torch.cat([s, a], -1)
    res = {
        "one critic": timeit(step(lambda: one(s, a)), repeat),
        "20 critics, batched layer": timeit(step(lambda: batched(s, a)), repeat),
        "20 critics, loop of modules": timeit(step(lambda: torch.stack([c(x) for c in loop])),
                                              repeat),
    }
    base = statistics.median(res["one critic"])
    return [{"bench": "critic ensemble fwd+bwd (1280 pairs)", "case": k,
             "median_ms": 1e3 * statistics.median(v), "ratio_vs_baseline":
             statistics.median(v) / base} for k, v in res.items()]


def bench_serving(repeat: int) -> list[dict]:
    torch.set_num_threads(1)
    pair = torch.jit.script(PairActor().eval())
    user = torch.jit.script(UserActor().eval())
    xs, xu = torch.randn(500, D), torch.randn(1, S.USER_STATE_DIM)
    with torch.inference_mode():
        tp = timeit(lambda: pair(xs), repeat, warmup=20)
        tu = timeit(lambda: user(xu), repeat, warmup=20)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    q = lambda v, p: sorted(v)[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
    base = statistics.median(tu)
    return [{"bench": "serving, 1 thread", "case": name, "median_ms": 1e3 * statistics.median(v),
             "p99_ms": 1e3 * q(v, 0.99), "ratio_vs_baseline": statistics.median(v) / base}
            for name, v in (("user-level actor, 1 request", tu),
                            ("pair-level actor, 500 candidates", tp))]


def bench_training(repeat: int) -> list[dict]:
    rows = []
    for name, hidden, bs in (("demo (critics 128-128, batch 128)", (128, 128), 128),
                             ("paper (critics 256-256, batch 256)", (256, 256), 256)):
        learner = EnhancedRL(EnhancedRLConfig(critic_hidden=hidden, batch_size=bs))
        batch = {"pair_state": torch.randn(bs, L, D), "action": torch.rand(bs, L, A) * 2 - 1,
                 "box_center": torch.zeros(bs, L, A), "mask": torch.ones(bs, L),
                 "reward": torch.rand(bs, 2, L), "next_pair_state": torch.randn(bs, L, D),
                 "next_box_center": torch.zeros(bs, L, A), "next_mask": torch.ones(bs, L),
                 "done": torch.zeros(bs)}
        t = statistics.median(timeit(lambda lr=learner, bt=batch: lr.update(bt), repeat))
        rows.append({"bench": "EnhancedRL update", "case": name, "median_ms": 1e3 * t,
                     "lists_per_s": bs / t})
    return rows


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="bench/results/learner.json")
    p.add_argument("--repeat", type=int, default=20)
    args = p.parse_args()
    torch.manual_seed(0)
    rows = bench_ensemble(args.repeat) + bench_serving(200) + bench_training(args.repeat)
    print(tabulate([{k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in r.items()}
                    for r in rows], headers="keys"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.platform(), "threads":
                               torch.get_num_threads(), "results": rows}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
