"""Petastorm loader of enhanced-state request lists from a pinned Delta snapshot.

Kept behind this small interface (STYLE.md): the trainer asks for epochs of batches
shaped like the learner's batch contract; how the rows are read is this module's business.

- pyarrow is imported before torch (petastorm + old pyarrow + torch ordering issue);
- `num_epochs=1` per reader, one reader per epoch;
- the epoch's order is a pure function of (seed, epoch, shard): Petastorm shuffles the row
  groups and the rows inside each with a non-zero per-epoch seed (its thread pool then
  hands results back in strict round robin, so several worker threads keep the order), and
  the cross-row-group shuffling buffer draws from its own seeded generator (Petastorm's
  `BatchedDataLoader` draws from torch's global RNG). So a resumed trainer that skips the
  N batches it had consumed lands on exactly the batch it was about to train on;
- sharding (`cur_shard` / `shard_count`, torchrun ranks) is by row group: index % count;
- every epoch's row count is checked: petastorm 0.13 sometimes returns an empty epoch
  (a race in its worker pool); an empty epoch is retried, a short one is reported.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow  # noqa: F401  (before torch, see module docstring)
import torch
from petastorm import make_batch_reader

from mtf import schema as S

log = logging.getLogger(__name__)

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM

COLUMNS = ("pair_state", "action", "box_center", "mask", "reward_watch", "reward_other",
           "next_pair_state", "next_box_center", "next_mask", "done")

Columns = dict[str, torch.Tensor]


def to_batch(raw: Columns) -> dict[str, torch.Tensor]:
    """Petastorm's flat columns -> the learner's batch contract (model/enhanced_rl.py)."""
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
    return {k: v.float() for k, v in batch.items()}


def shuffled_batches(chunks: Iterable[Columns], batch_size: int, capacity: int,
                     generator: torch.Generator) -> Iterator[Columns]:
    """Re-batch column chunks through a shuffling buffer of `capacity` rows.

    Once the buffer holds `capacity + batch_size` rows, each batch is a uniform draw of
    `batch_size` buffered rows (from `generator`); at the end the rest is drained in a
    random order, the last batch possibly short. Deterministic given the chunks and the
    generator's state.
    """
    buf: Columns = {}
    size = 0

    def draw(n: int) -> Columns:
        nonlocal buf, size
        perm = torch.randperm(size, generator=generator)
        take, keep = perm[:n], perm[n:]
        out = {k: v[take] for k, v in buf.items()}
        buf = {k: v[keep] for k, v in buf.items()}
        size -= n
        return out

    for chunk in chunks:
        n = int(next(iter(chunk.values())).shape[0])
        buf = {k: torch.cat([buf[k], v]) if buf else v for k, v in chunk.items()}
        size += n
        while size >= capacity + batch_size:
            yield draw(batch_size)
    while size > 0:
        yield draw(min(batch_size, size))


class EmptyEpochError(RuntimeError):
    pass


@dataclass
class EnhancedStateLoader:
    """Epochs of request-list batches from the files of one pinned snapshot."""

    files: list[str]
    batch_size: int
    seed: int = 0
    workers: int = 2
    expected_rows: int | None = None
    """Rows in the snapshot (whole table slice); checked when not sharded."""
    cur_shard: int | None = None
    shard_count: int | None = None
    max_empty_retries: int = 3
    shuffle_buffer_batches: int = 4
    """Capacity of the cross-row-group shuffling buffer, in batches."""

    def _urls(self) -> list[str]:
        return [f if "://" in f else f"file://{f}" for f in self.files]

    def epoch_seed(self, epoch: int) -> int:
        """Seed of one epoch's order; never 0 (Petastorm reads seed 0 as 'not seeded')."""
        return (self.seed * 1000003 + epoch) % (2**31 - 1) + 1

    def _chunks(self, epoch: int) -> Iterator[Columns]:
        # petastorm's Reader.stop() prints a line on stdout: keep the trainer's stdout clean
        with contextlib.redirect_stdout(io.StringIO()), make_batch_reader(
                self._urls(), schema_fields=list(COLUMNS), num_epochs=1,
                workers_count=self.workers, seed=self.epoch_seed(epoch),
                shuffle_row_groups=True, shuffle_rows=True,
                cur_shard=self.cur_shard, shard_count=self.shard_count) as reader:
            for rows in reader:
                yield {name: torch.from_numpy(np.array(getattr(rows, name)))  # writable copy
                       for name in COLUMNS}

    def _read_epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.epoch_seed(epoch))
        for raw in shuffled_batches(self._chunks(epoch), self.batch_size,
                                    self.shuffle_buffer_batches * self.batch_size, gen):
            yield to_batch(raw)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the batches of one epoch after its first `skip` (which are still read, so
        that the order stays the same); retry an empty epoch, report a short one."""
        for attempt in range(self.max_empty_retries + 1):
            rows = 0
            for i, batch in enumerate(self._read_epoch(epoch)):
                rows += int(batch["done"].shape[0])
                if i >= skip:
                    yield batch
            if rows > 0:
                break
            log.warning("petastorm returned an empty epoch %d (attempt %d); retrying",
                        epoch, attempt + 1)
        else:
            raise EmptyEpochError(f"{self.max_empty_retries + 1} empty epochs in a row")
        self.last_epoch_rows = rows
        if self.shard_count in (None, 1) and self.expected_rows and rows < self.expected_rows:
            log.warning("short epoch %d: %d of %d rows", epoch, rows, self.expected_rows)
