"""Petastorm loader of enhanced-state request lists from a pinned Delta snapshot.

Kept behind this small interface (STYLE.md): the trainer asks for epochs of batches
shaped like the learner's batch contract; how the rows are read is this module's business.

- pyarrow is imported before torch (petastorm + old pyarrow + torch ordering issue);
- `num_epochs=1` per reader, one reader per epoch, seeded by (seed, epoch);
- every epoch's row count is checked: petastorm 0.13 sometimes returns an empty epoch
  (a race in its worker pool); an empty epoch is retried, a short one is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow  # noqa: F401  (before torch, see module docstring)
import torch
from petastorm import make_batch_reader
from petastorm.pytorch import BatchedDataLoader

from mtf import schema as S

log = logging.getLogger(__name__)

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM

COLUMNS = ("pair_state", "action", "box_center", "mask", "reward_watch", "reward_other",
           "next_pair_state", "next_box_center", "next_mask", "done")


def to_batch(raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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

    def _urls(self) -> list[str]:
        return [f if "://" in f else f"file://{f}" for f in self.files]

    def _read_epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        with make_batch_reader(
                self._urls(), schema_fields=list(COLUMNS), num_epochs=1,
                workers_count=self.workers, seed=self.seed * 1000003 + epoch,
                shuffle_row_groups=True, shuffle_rows=True,
                cur_shard=self.cur_shard, shard_count=self.shard_count) as reader:
            loader = BatchedDataLoader(reader, batch_size=self.batch_size,
                                       shuffling_queue_capacity=4 * self.batch_size)
            for raw in loader:
                yield to_batch(raw)

    def epoch(self, epoch: int) -> Iterator[dict[str, torch.Tensor]]:
        """Yield the batches of one epoch; retry an empty epoch, report a short one."""
        for attempt in range(self.max_empty_retries + 1):
            rows = 0
            for batch in self._read_epoch(epoch):
                rows += int(batch["done"].shape[0])
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
