"""Petastorm reads exactly the rows of a pinned Delta version (never the table directory),
in an order that is a function of (seed, epoch, shard) only."""

from __future__ import annotations

import numpy as np
import pytest

from core import schema as S

L, D, A = S.LIST_LEN, S.PAIR_STATE_DIM, S.ACTION_DIM
K = 10  # data.candidates of the test profile


def _lists(spark, ds, n, marker):
    """n enhanced_state rows whose `done` and first state value carry `marker`."""
    from pyspark.sql import functions as F

    z = lambda k: F.array_repeat(F.lit(0.0).cast("float"), k)  # noqa: E731
    return spark.range(n).select(
        F.lit(ds).alias("ds"), F.lit("train").alias("split"),
        F.concat(F.lit("r"), F.col("id").cast("string")).alias("request_id"),
        F.lit("s").alias("session_id"), F.col("id").alias("user_id"),
        F.lit(0).alias("request_index"), F.lit(5).alias("n_items"),
        F.array_repeat(F.lit(1.0).cast("float"), L).alias("mask"),
        F.array_repeat(F.lit(-1).cast("bigint"), L).alias("item_ids"),
        F.concat(F.array(F.col("id").cast("float")), z(L * D - 1)).alias("pair_state"),
        z(L * A).alias("action"), z(L * A).alias("box_center"),
        F.array_repeat(F.lit(marker).cast("float"), L).alias("reward_watch"),
        z(L).alias("reward_other"), z(L).alias("valid"), z(L * D).alias("next_pair_state"),
        z(L * A).alias("next_box_center"), z(L).alias("next_mask"),
        F.lit(1.0).cast("float").alias("done"),
        F.concat(F.array(F.col("id").cast("float")), z(K * D - 1)).alias("cand_state"),
        z(K * A).alias("cand_center"),
        F.concat(F.array_repeat(F.lit(1.0).cast("float"), L), z(K - L)).alias("cand_mask"),
        *[F.lit(None).cast("array<float>").alias(c)  # data.next_candidates off
          for c in ("next_cand_state", "next_cand_center", "next_cand_mask")])


@pytest.mark.spark
def test_petastorm_reads_the_pinned_version(spark, cfg):
    from model.loader import EnhancedStateLoader
    from store.snapshot import resolve_snapshot
    from store.tables import write_partition

    db = cfg.storage.database
    write_partition(_lists(spark, "2031-01-01", 300, 1.0), db, "enhanced_state", "2031-01-01")
    write_partition(_lists(spark, "2031-01-02", 200, 2.0), db, "enhanced_state", "2031-01-02")
    snap = resolve_snapshot(spark, db, "enhanced_state", "2031-01-02", days=2)
    assert snap.rows == 500 and snap.days == ["2031-01-01", "2031-01-02"]
    # a later rewrite of day 2 (new files, old ones logically removed) must not leak in
    write_partition(_lists(spark, "2031-01-02", 50, 9.0), db, "enhanced_state", "2031-01-02")
    loader = EnhancedStateLoader(files=snap.files, batch_size=64, seed=1, expected_rows=snap.rows)
    seen, markers = [], set()
    for batch in loader.epoch(0):
        assert batch["pair_state"].shape[1:] == (L, D)
        assert batch["reward"].shape[1:] == (2, L)
        seen.extend(batch["pair_state"][:, 0, 0].tolist())
        markers.update(batch["reward"][:, 0, 0].tolist())
    assert len(seen) == 500 and markers == {1.0, 2.0}
    assert sorted(int(x) for x in seen) == sorted(list(range(300)) + list(range(200)))
    # the newest version has the rewritten day
    snap2 = resolve_snapshot(spark, db, "enhanced_state", "2031-01-02", days=1)
    assert snap2.version > snap.version and snap2.rows == 50


@pytest.mark.spark
def test_loader_batches_match_the_learner_contract(spark, cfg):
    from model.loader import EnhancedStateLoader
    from store.snapshot import resolve_snapshot

    snap = resolve_snapshot(spark, cfg.storage.database, "enhanced_state", "2031-01-01", days=1)
    batch = next(iter(EnhancedStateLoader(files=snap.files, batch_size=16).epoch(0)))
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    assert shapes == {
        "pair_state": (16, L, D), "action": (16, L, A), "box_center": (16, L, A),
        "mask": (16, L), "reward": (16, 2, L), "next_pair_state": (16, L, D),
        "next_box_center": (16, L, A), "next_mask": (16, L), "done": (16,),
        "cand_state": (16, K, D), "cand_center": (16, K, A), "cand_mask": (16, K)}
    assert all(str(v.dtype) == "torch.float32" for v in batch.values())
    assert np.isfinite(batch["pair_state"].numpy()).all()
    # the row's candidate slots come with the row (its id in the first value of both)
    assert (batch["cand_state"][:, 0, 0] == batch["pair_state"][:, 0, 0]).all()
    assert (batch["cand_mask"].sum(1) == L).all()


def test_loader_reads_the_candidates_the_files_hold(tmp_path):
    """cand_* (and next_cand_*) are read when every file holds them with values, K from the
    files; files without them give the base contract; a mix leaves them out; a wrong K or
    differing Ks are refused."""
    from _snapshot_data import write_tiny_snapshot

    from model.loader import EnhancedStateLoader, read_columns
    from store.snapshot import Snapshot

    def files(name: str, **kw) -> list[str]:
        return Snapshot.load(write_tiny_snapshot(tmp_path / name, rows_per_file=64,
                                                 row_group_rows=16, **kw)).files

    both = files("both", candidates=12, next_candidates=True)
    batches = list(EnhancedStateLoader(files=both, batch_size=16, seed=1).epoch(0))
    assert sum(int(b["done"].shape[0]) for b in batches) == 128
    b = {k: v.numpy() for k, v in batches[0].items()}
    assert tuple(b["cand_state"].shape) == (16, 12, D)
    assert tuple(b["cand_center"].shape) == (16, 12, A)
    assert tuple(b["next_cand_state"].shape) == (16, 12, D)
    assert tuple(b["next_cand_mask"].shape) == (16, 12)
    # the first l slots are the exposed pairs, absent slots zero
    assert np.array_equal(b["cand_state"][:, :L], b["pair_state"])
    assert np.array_equal(b["cand_mask"][:, :L], b["mask"])
    assert not b["cand_state"][b["cand_mask"] == 0].any()
    assert not b["next_cand_mask"][b["done"] > 0].any()
    cand_only = files("cand", candidates=12)
    assert set(next(iter(EnhancedStateLoader(files=cand_only, batch_size=16).epoch(0)))
               ) == set(b) - {"next_cand_state", "next_cand_center", "next_cand_mask"}
    plain = files("plain")
    assert "cand_state" not in next(iter(EnhancedStateLoader(files=plain,
                                                             batch_size=16).epoch(0)))
    assert read_columns(["file://" + f for f in plain + both])[1] is None  # a mix: left out
    with pytest.raises(ValueError, match="expected 20"):
        read_columns(["file://" + f for f in both], candidates=20)
    other_k = files("k8", candidates=8)
    with pytest.raises(ValueError, match="different candidate slot counts"):
        read_columns(["file://" + f for f in both + other_k])


def test_epoch_order_is_a_function_of_seed_epoch_and_shard(tmp_path):
    """Every epoch holds every row once (petastorm's end-of-epoch race must not drop row
    groups), a fresh loader replays an epoch exactly, skipping N batches lands on batch N,
    epochs differ, and the two shards split the rows."""
    from _snapshot_data import write_tiny_snapshot

    from model.loader import EnhancedStateLoader
    from store.snapshot import Snapshot

    snap = Snapshot.load(write_tiny_snapshot(tmp_path, n_files=3, rows_per_file=64,
                                             row_group_rows=16))

    def ids(loader: EnhancedStateLoader, epoch: int, skip: int = 0) -> list[list[int]]:
        return [[int(x) for x in b["pair_state"][:, 0, 0]] for b in loader.epoch(epoch, skip)]

    make = lambda **kw: EnhancedStateLoader(files=snap.files, batch_size=16, seed=3,  # noqa: E731
                                            expected_rows=snap.rows, **kw)
    epochs = [ids(make(), e) for e in range(6)]
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(192))
    assert ids(make(), 4) == epochs[4] and ids(make(), 4, skip=5) == epochs[4][5:]
    assert len({str(b) for b in epochs}) == 6
    assert ids(EnhancedStateLoader(files=snap.files, batch_size=16, seed=4), 4) != epochs[4]
    shards = [sorted(i for b in ids(make(cur_shard=r, shard_count=2), 1) for i in b)
              for r in (0, 1)]
    assert sorted(shards[0] + shards[1]) == list(range(192)) and len(shards[0]) == 96


def test_prefetched_keeps_order_raises_and_closes_early():
    from model.loader import prefetched

    closed = []

    def source(fail_at: int | None = None):
        try:
            for i in range(50):
                if i == fail_at:
                    raise ValueError("broken row group")
                yield i
        finally:
            closed.append(True)

    assert list(prefetched(source(), 2)) == list(range(50)) and closed == [True]
    with pytest.raises(ValueError, match="broken row group"):
        list(prefetched(source(fail_at=7), 2))
    it = prefetched(source(), 2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()  # the trainer's last step: the thread stops and the source is closed
    assert closed == [True, True, True]
    assert list(prefetched(source(), 0)) == list(range(50))  # depth 0: no thread
