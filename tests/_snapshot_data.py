"""A tiny training snapshot without Spark: enhanced_state-shaped Parquet files + snapshot.json.

The trainer's `--snapshot` path reads exactly these files through Petastorm, so the trainer
tests (resume, determinism, warm start, torchrun) need no Spark session. Columns and widths
follow sql/ddl/10_enhanced_state.sql; each file holds several row groups, so that Petastorm
can shard row groups between ranks and shuffle their order per epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import schema as S
from store.snapshot import Snapshot

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM


def _rows(rng: np.random.Generator, n: int, first_id: int, candidates: int = 0,
          next_candidates: bool = False) -> pa.Table:
    n_items = rng.integers(1, L + 1, n)
    mask = (np.arange(L)[None, :] < n_items[:, None]).astype(np.float32)  # [n, L]
    done = (rng.random(n) < 0.3).astype(np.float32)
    next_mask = np.where(done[:, None] > 0, 0.0, 1.0).astype(np.float32) * np.ones((n, L))
    center = rng.uniform(-0.7, 0.7, (n, L, A)).astype(np.float32)
    action = center + rng.uniform(-0.15, 0.15, (n, L, A)).astype(np.float32)
    state = rng.standard_normal((n, L, D)).astype(np.float32)
    state[:, 0, 0] = np.arange(first_id, first_id + n)  # a row id, to check what was read
    m3 = mask[..., None]

    def flat(x: np.ndarray) -> pa.Array:
        x = np.asarray(x, dtype=np.float32).reshape(n, -1)
        return pa.array(list(x), type=pa.list_(pa.float32()))

    cols = {}
    if candidates:  # K logged candidates, the exposed ones first, a few absent slots
        k = candidates
        cmask = (rng.random((n, k)) < 0.9).astype(np.float32)
        cmask[:, :L] = mask
        cstate = rng.standard_normal((n, k, D)).astype(np.float32) * cmask[..., None]
        cstate[:, :L] = state * m3
        cols |= {"cand_state": flat(cstate), "cand_mask": flat(cmask),
                 "cand_center": flat(rng.uniform(-0.7, 0.7, (n, k, A)) * cmask[..., None])}
        if next_candidates:
            nmask = np.where(done[:, None] > 0, 0.0, 1.0) * np.ones((n, k))
            cols |= {"next_cand_state": flat(rng.standard_normal((n, k, D)) * nmask[..., None]),
                     "next_cand_center": flat(rng.uniform(-0.7, 0.7, (n, k, A))
                                              * nmask[..., None]),
                     "next_cand_mask": flat(nmask)}
    return pa.table({
        "request_id": [f"r{first_id + i}" for i in range(n)],
        "mask": flat(mask),
        "pair_state": flat(state * m3), "action": flat(action * m3),
        "box_center": flat(center * m3),
        "reward_watch": flat(np.abs(state[..., 1]) * mask),
        "reward_other": flat((action[..., 0] > center[..., 0]) * mask),
        "next_pair_state": flat(rng.standard_normal((n, L, D)) * next_mask[..., None]),
        "next_box_center": flat(rng.uniform(-0.7, 0.7, (n, L, A)) * next_mask[..., None]),
        "next_mask": flat(next_mask),
        "done": pa.array(done, type=pa.float32()),
        **cols,
    })


def write_tiny_snapshot(folder: Path, n_files: int = 2, rows_per_file: int = 96,
                        row_group_rows: int = 32, seed: int = 0, candidates: int = 0,
                        next_candidates: bool = False) -> Path:
    """Write `n_files` Parquet files (row groups of `row_group_rows`) and their snapshot.json
    under `folder`; return the snapshot.json path. Row ids 0..n-1 sit in pair_state[:, 0, 0].
    With `candidates` = K the rows also hold cand_state / cand_center / cand_mask (the
    first l slots are the exposed pairs) and, with `next_candidates`, the next_cand_* ones;
    without, they lack them (a table from before the candidates)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(n_files):
        path = folder / f"part-{i:05d}.parquet"
        pq.write_table(_rows(rng, rows_per_file, i * rows_per_file, candidates,
                             next_candidates), path,
                       row_group_size=row_group_rows)
        files.append(str(path))
    snap = Snapshot(table="mtf.enhanced_state", version=7, location=str(folder),
                    days=["2031-02-01"], split="train", files=files,
                    rows=n_files * rows_per_file)
    out = folder / "snapshot.json"
    snap.save(out)
    return out
