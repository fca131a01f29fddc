"""Petastorm loader of enhanced-state request lists from a pinned Delta snapshot.

Kept behind this small interface (STYLE.md): the trainer asks for epochs of batches
shaped like the learner's batch contract; how the rows are read is this module's business.

- pyarrow is imported before torch (petastorm + old pyarrow + torch ordering issue);
- one reader per epoch, read for exactly one pass: petastorm 0.13's pools decide that an
  epoch is over with a check-then-act race against their ventilator thread (all results
  consumed? -> ventilator completed?), and lose the last row groups of an epoch, or all of
  them, when the ventilator finishes in between (measured on this repo's data: 1 epoch in
  30 short or empty). So the reader runs with `num_epochs=None`, whose ventilator never
  "completes", and we take exactly this shard's number of row groups from it (petastorm
  publishes one result per non-empty row group; the first pass is one permutation of them);
- the epoch's order is a pure function of (seed, epoch, shard): Petastorm shuffles the row
  groups and the rows inside each with a non-zero per-epoch seed, ONE worker thread decodes
  them in that order (in the background, while the learner steps; with several, petastorm's
  round robin skips a momentarily idle worker, and the order depends on timing), and the
  cross-row-group shuffling buffer draws from its own seeded generator (Petastorm's
  `BatchedDataLoader` draws from torch's global RNG). So a resumed trainer that skips the
  N batches it had consumed lands on exactly the batch it was about to train on;
- turning a row group into arrays (petastorm does it in the consumer's `next()`) runs one
  row group ahead in a thread of ours (`prefetched`), while the learner computes; the
  order of the row groups is unchanged;
- sharding (`cur_shard` / `shard_count`, torchrun ranks) is by row group: index % count;
- the logged candidates (`cand_state`, `cand_center`, `cand_mask`; and the next request's,
  `next_cand_*`) are read when every file holds them with values (Parquet footers only:
  the table has them NULL when the build left them out, files of an older table lack
  them); K, the candidate slots, is the files' `cand_mask` width, the same in all of them;
- every epoch's row count is checked against the snapshot's (unsharded) or this shard's
  first epoch's: a mismatch is logged (it would also break the exact replay of a resume).
"""

from __future__ import annotations

import contextlib
import io
import logging
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow  # noqa: F401  (before torch, see module docstring)
import pyarrow.fs
import pyarrow.parquet as pq
import torch
from petastorm import make_batch_reader

from core import schema as S

log = logging.getLogger(__name__)

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM

COLUMNS = ("pair_state", "action", "box_center", "mask", "reward_watch", "reward_other",
           "next_pair_state", "next_box_center", "next_mask", "done")
CAND_COLUMNS = ("cand_state", "cand_center", "cand_mask")
"""The request's logged candidates -> [B,K,D], [B,K,A], [B,K] (read when the files have them)."""
NEXT_CAND_COLUMNS = ("next_cand_state", "next_cand_center", "next_cand_mask")
"""The next request's logged candidates, same shapes (zeros when done)."""
OPTIONAL = (CAND_COLUMNS, NEXT_CAND_COLUMNS)

Columns = dict[str, torch.Tensor]
T = TypeVar("T")


def to_batch(raw: Columns, candidates: int | None = None) -> dict[str, torch.Tensor]:
    """Petastorm's flat columns -> the learner's batch contract (model/enhanced_rl.py), plus
    `cand_state` [B,K,D], `cand_center` [B,K,A], `cand_mask` [B,K] and the `next_cand_*`
    ones when `raw` has them. K is the mask's width; `candidates`, when given, must match."""
    b = raw["done"].shape[0]
    batch = {
        "pair_state": raw["pair_state"].reshape(b, L, D),
        "action": raw["action"].reshape(b, L, A),
        "box_center": raw["box_center"].reshape(b, L, A),
        "mask": raw["mask"].reshape(b, L),
        "reward": torch.stack([raw["reward_watch"], raw["reward_other"]], dim=1),  # [B,2,L]
        "next_pair_state": raw["next_pair_state"].reshape(b, L, D),
        "next_box_center": raw["next_box_center"].reshape(b, L, A),
        "next_mask": raw["next_mask"].reshape(b, L),
        "done": raw["done"].reshape(b),
    }
    for state, center, mask in OPTIONAL:
        if mask not in raw:
            continue
        k = raw[mask].reshape(b, -1).shape[1]
        if candidates is not None and k != candidates:
            raise ValueError(f"{mask} has {k} candidate slots, expected {candidates}")
        batch[state] = raw[state].reshape(b, k, D)
        batch[center] = raw[center].reshape(b, k, A)
        batch[mask] = raw[mask].reshape(b, k)
    return {k: v.float() for k, v in batch.items()}


def shuffled_batches(chunks: Iterable[Columns], batch_size: int, capacity: int,
                     generator: torch.Generator) -> Iterator[Columns]:
    """Re-batch column chunks through a shuffling buffer of `capacity` rows.

    Once the buffer holds `capacity + batch_size` rows, each batch is a uniform draw of
    `batch_size` buffered rows (from `generator`); at the end the rest is drained in a
    random order, the last batch possibly short. Deterministic given the chunks and the
    generator's state.

    A draw copies O(batch) rows, not the buffer: the rows left above the new size move
    into the drawn rows' slots below it (the buffer's order does not matter, every draw is
    a uniform subset). Rebuilding the buffer by gathering the kept rows cost a copy of all
    of it per batch: 0.49 s of CPU per 60-batch demo-size epoch in cProfile, now 0.07 s.
    """
    buf: Columns = {}
    size = 0

    def draw(n: int) -> Columns:
        nonlocal buf, size
        take = torch.randperm(size, generator=generator)[:n]
        out = {k: v[take] for k, v in buf.items()}
        new = size - n
        taken = torch.zeros(size, dtype=torch.bool)
        taken[take] = True
        holes = torch.nonzero(taken[:new]).flatten()  # drawn, below the new size
        movers = torch.nonzero(~taken[new:]).flatten() + new  # kept, above it
        for v in buf.values():
            v[holes] = v[movers]
        buf = {k: v[:new] for k, v in buf.items()}
        size = new
        return out

    for chunk in chunks:
        n = int(next(iter(chunk.values())).shape[0])
        buf = {k: torch.cat([buf[k], v]) if buf else v for k, v in chunk.items()}
        size += n
        while size >= capacity + batch_size:
            yield draw(batch_size)
    while size > 0:
        yield draw(min(batch_size, size))


def _writable(a: np.ndarray) -> np.ndarray:
    """`a`, or a copy where it is read-only (torch wants writable memory; petastorm's
    stacked list columns are, its plain `done` column is not): no second copy of the
    big list columns."""
    return a if a.flags.writeable else a.copy()


_END = object()


def prefetched(items: Iterator[T], depth: int) -> Iterator[T]:
    """`items`, produced up to `depth` ahead by a background thread, in the same order.

    Petastorm's reader thread only reads the Parquet row groups: turning a row group into
    numpy arrays (pandas conversion, a vstack of its list cells) happens in the consumer's
    `next()`, about 5% of a demo-size training step, with the learner waiting. Here it
    runs while the learner computes (torch releases the GIL inside its kernels). `items`
    is started, advanced and closed in the thread only; an exception in it is re-raised
    here; closing this generator early (the trainer's last step) stops the thread and
    closes `items` (petastorm's reader) before returning."""
    if depth <= 0:
        yield from items
        return
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(x, timeout=0.05)
                return True
            except queue.Full:
                pass
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    break
            put(_END)
        except BaseException as e:  # handed to the consumer
            put(e)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="loader-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            x = box.get()
            if x is _END:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        stop.set()
        thread.join()


def row_group_count(url: str) -> int:
    """Row groups of one Parquet file (footer only); an empty row group is refused, since
    petastorm publishes nothing for it and the epoch count below would be off."""
    fs, path = pyarrow.fs.FileSystem.from_uri(url)
    with fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
    if any(meta.row_group(i).num_rows == 0 for i in range(meta.num_row_groups)):
        raise ValueError(f"{url} has an empty row group")
    return meta.num_row_groups


def candidate_slots(url: str) -> dict[str, int | None]:
    """For each optional column group (its mask's name): K, the candidate slots of this
    file's rows, from the Parquet footer (values of the mask column / rows), or None when
    the file lacks the group or holds it NULL. Refuses a file whose row groups differ."""
    fs, path = pyarrow.fs.FileSystem.from_uri(url)
    with fs.open_input_file(path) as f:
        meta = pq.ParquetFile(f).metadata
    # top-level column -> its leaf (a list<float> column has one: `name.list.element`)
    leaves = {meta.schema.column(j).path.split(".")[0]: j for j in range(meta.num_columns)}
    out: dict[str, int | None] = {}
    for group in OPTIONAL:
        mask = group[-1]
        if any(c not in leaves for c in group):
            out[mask] = None
            continue
        widths = set()
        for i in range(meta.num_row_groups):
            rg = meta.row_group(i)
            stats = rg.column(leaves[mask]).statistics
            if stats is None:
                raise ValueError(f"{url}: no statistics for {mask}: cannot tell K")
            widths.add(stats.num_values // max(rg.num_rows, 1)
                       if stats.num_values % max(rg.num_rows, 1) == 0 else -1)
        if -1 in widths or len(widths) > 1:
            raise ValueError(f"{url}: rows of {mask} differ in length or are partly NULL")
        k = widths.pop() if widths else 0
        out[mask] = k or None
    return out


def read_columns(urls: list[str], candidates: int | None = None
                 ) -> tuple[tuple[str, ...], int | None]:
    """(the columns to read, K): COLUMNS plus each candidate group that every file holds
    with values, all with the same K (`candidates` when given). A group that only some
    files hold is left out, with a warning (the learner's batch check names what it lacks)."""
    per_file = [candidate_slots(u) for u in urls]
    columns, ks = list(COLUMNS), set[int]()
    for group in OPTIONAL:
        mask = group[-1]
        found = [f[mask] for f in per_file]
        if not found or all(k is None for k in found):
            continue
        if any(k is None for k in found):
            log.warning("%d of %d files lack %s: not read", sum(k is None for k in found),
                        len(found), ", ".join(group))
            continue
        columns.extend(group)
        ks.update(k for k in found if k is not None)
    if len(ks) > 1:
        raise ValueError(f"the files hold different candidate slot counts K: {sorted(ks)}")
    k = ks.pop() if ks else None
    if candidates is not None and k is not None and k != candidates:
        raise ValueError(f"the files hold K = {k} candidate slots, expected {candidates}")
    return tuple(columns), k


@dataclass
class EnhancedStateLoader:
    """Epochs of request-list batches from the files of one pinned snapshot."""

    files: list[str]
    batch_size: int
    seed: int = 0
    expected_rows: int | None = None
    """Rows in the snapshot (whole table slice); checked when not sharded."""
    cur_shard: int | None = None
    shard_count: int | None = None
    shuffle_buffer_batches: int = 4
    """Capacity of the cross-row-group shuffling buffer, in batches."""
    prefetch_chunks: int = 1
    """Decoded row groups a background thread keeps ready (0: decode on demand)."""
    candidates: int | None = None
    """K the files' candidate columns must have (None: whatever they hold)."""
    epoch_rows: int | None = field(default=None, init=False)
    """Rows a full epoch has: the snapshot's, or (sharded) this shard's first epoch's."""
    last_epoch_rows: int | None = field(default=None, init=False)
    _row_groups: int | None = field(default=None, init=False, repr=False)
    _columns: tuple[tuple[str, ...], int | None] | None = field(default=None, init=False,
                                                                repr=False)

    def _urls(self) -> list[str]:
        """file:///abs URLs for local files (Spark's `inputFiles` gives 'file:/abs')."""
        return [f if "://" in f else "file://" + f.removeprefix("file:") for f in self.files]

    def shard_row_groups(self) -> int:
        """Row groups this reader reads per epoch (petastorm shards by index % count)."""
        if self._row_groups is None:
            total = sum(row_group_count(u) for u in self._urls())
            shard, count = self.cur_shard or 0, self.shard_count or 1
            self._row_groups = len(range(shard, total, count))
            if self._row_groups == 0:
                raise ValueError(f"shard {shard} of {count} has no row group ({total} in all)")
        return self._row_groups

    def columns(self) -> tuple[str, ...]:
        """The columns read: COLUMNS and the candidate groups the files hold."""
        if self._columns is None:
            self._columns = read_columns(self._urls(), self.candidates)
        return self._columns[0]

    def candidate_slots(self) -> int | None:
        """K of the candidate columns read, None when there are none."""
        self.columns()
        assert self._columns is not None
        return self._columns[1]

    def epoch_seed(self, epoch: int) -> int:
        """Seed of one epoch's order; never 0 (Petastorm reads seed 0 as 'not seeded')."""
        return (self.seed * 1000003 + epoch) % (2**31 - 1) + 1

    def _chunks(self, epoch: int) -> Iterator[Columns]:
        # petastorm's Reader.stop() prints a line on stdout: keep the trainer's stdout clean
        n = self.shard_row_groups()
        columns = self.columns()
        with contextlib.redirect_stdout(io.StringIO()), make_batch_reader(
                self._urls(), schema_fields=list(columns), num_epochs=None,
                workers_count=1, seed=self.epoch_seed(epoch),
                shuffle_row_groups=True, shuffle_rows=True,
                cur_shard=self.cur_shard, shard_count=self.shard_count) as reader:
            for _, rows in zip(range(n), reader):
                yield {name: torch.from_numpy(_writable(getattr(rows, name)))
                       for name in columns}

    def _read_epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.epoch_seed(epoch))
        chunks = prefetched(self._chunks(epoch), self.prefetch_chunks)
        for raw in shuffled_batches(chunks, self.batch_size,
                                    self.shuffle_buffer_batches * self.batch_size, gen):
            yield to_batch(raw, self.candidate_slots())

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the batches of one epoch after its first `skip` (which are still read, so
        that the order stays the same); report an epoch of an unexpected size."""
        rows = 0
        for i, batch in enumerate(self._read_epoch(epoch)):
            rows += int(batch["done"].shape[0])
            if i >= skip:
                yield batch
        self.last_epoch_rows = rows
        if self.epoch_rows is None:
            sharded = self.shard_count not in (None, 1)
            self.epoch_rows = self.expected_rows if self.expected_rows and not sharded else rows
        if rows != self.epoch_rows:
            log.warning("epoch %d has %d rows, expected %d", epoch, rows, self.epoch_rows)
