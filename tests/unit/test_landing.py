"""The landing zone's completeness check (store/landing.py, jobs/check_logs.py): markers read
through fsspec, for a plain path and for a URI-style warehouse, without Spark."""

from __future__ import annotations

import os

import pytest

from store.landing import MARKER, missing_landings
from store.tables import BRONZE

DS = "2031-05-05"


@pytest.mark.parametrize("uri", [False, True])
def test_missing_landings_follows_the_markers(cfg, tmp_path, monkeypatch, uri):
    monkeypatch.setenv("MTF_WAREHOUSE", f"file://{tmp_path}" if uri else str(tmp_path))
    assert missing_landings(cfg, DS) == list(BRONZE)
    for t in BRONZE[:-1]:
        folder = tmp_path / "_landing" / t / DS
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"")
        (folder / MARKER).touch()
    # a folder with data but no marker is a write in progress: still missing
    (tmp_path / "_landing" / BRONZE[-1] / DS).mkdir(parents=True)
    assert missing_landings(cfg, DS) == [BRONZE[-1]]
    assert missing_landings(cfg, "2031-05-06") == list(BRONZE)  # another day
    (tmp_path / "_landing" / BRONZE[-1] / DS / MARKER).touch()
    assert missing_landings(cfg, DS) == []
    with pytest.raises(ValueError):
        missing_landings(cfg, "2031-05-05/../x")


def test_check_logs_step_fails_until_landed(tmp_path, monkeypatch):
    from jobs import check_logs

    monkeypatch.setenv("MTF_WAREHOUSE", str(tmp_path))
    assert check_logs.logs_landed(DS, "test") is False
    with pytest.raises(RuntimeError, match="not landed yet.*raw_users"):
        check_logs.main(["--ds", DS, "--profile", "test"])
    for t in BRONZE:
        (tmp_path / "_landing" / t / DS).mkdir(parents=True)
        (tmp_path / "_landing" / t / DS / MARKER).touch()
    assert check_logs.logs_landed(DS, "test") is True
    assert check_logs.main(["--ds", DS, "--profile", "test"]) == 0


def _land(tmp_path, monkeypatch, cfg, tables: dict[str, list]):
    """Write Parquet files with pyarrow into raw_feedback's landing folder, then seal it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from store.landing import landing_path, seal_landing

    monkeypatch.setenv("MTF_WAREHOUSE", str(tmp_path))
    folder = landing_path(cfg, "raw_feedback", DS)
    os.makedirs(folder, exist_ok=True)
    for name, cols in tables.items():
        pq.write_table(pa.table(cols), f"{folder}/{name}")
    return folder, seal_landing


ROWS = {"part-0.parquet": {"request_id": ["a", "b"], "watch_time_s": [1.0, 2.0]},
        "part-1.parquet": {"request_id": ["c"], "watch_time_s": [3.0]}}


def test_a_sealed_folder_verifies_and_counts_what_was_written(cfg, tmp_path, monkeypatch):
    from store.landing import MARKER, LandingError, verify_landing

    folder, seal = _land(tmp_path, monkeypatch, cfg, ROWS)
    with pytest.raises(LandingError, match="wrote 5 rows but .* holds 3"):
        seal(cfg, "raw_feedback", DS, expected_rows=5)
    assert not os.path.exists(f"{folder}/{MARKER}")
    assert "raw_feedback" in missing_landings(cfg, DS)
    manifest = seal(cfg, "raw_feedback", DS, expected_rows=3)
    assert manifest["rows"] == 3 and sorted(manifest["files"]) == sorted(ROWS)
    assert verify_landing(cfg, "raw_feedback", DS) == manifest
    assert "raw_feedback" not in missing_landings(cfg, DS)


def _corrupt(folder: str, how: str) -> None:
    path = f"{folder}/part-1.parquet"
    data = open(path, "rb").read()
    if how == "empty":
        open(path, "wb").close()
    elif how == "missing":
        os.remove(path)
    elif how == "truncated":
        open(path, "wb").write(data[:-50])
    elif how == "changed":
        i = len(data) // 2
        open(path, "wb").write(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    elif how == "stray":
        open(f"{folder}/notes.txt", "w").write("not data")
    elif how == "no-manifest":
        os.remove(f"{folder}/_MANIFEST.json")


@pytest.mark.parametrize("how,message", [
    ("empty", r"part-1.parquet has 0 bytes, the manifest says \d+"),
    ("missing", r"file\(s\) in the manifest are missing: part-1.parquet"),
    ("truncated", r"part-1.parquet has \d+ bytes, the manifest says \d+ \(truncated"),
    ("changed", r"part-1.parquet does not match its manifest checksum"),
    ("stray", r"not written by upstream: notes.txt: remove them"),
    ("no-manifest", r"no _MANIFEST.json: the day has not landed"),
])
def test_a_folder_that_differs_from_its_manifest_is_refused(cfg, tmp_path, monkeypatch, how,
                                                            message):
    from store.landing import LandingError, verify_landing

    folder, seal = _land(tmp_path, monkeypatch, cfg, ROWS)
    seal(cfg, "raw_feedback", DS)
    _corrupt(folder, how)
    with pytest.raises(LandingError, match=r"landed raw_feedback ds=2031-05-05 .*" + message):
        verify_landing(cfg, "raw_feedback", DS)


@pytest.mark.parametrize("second,message", [
    ({"request_id": ["c"], "watch_time_s": [3.0], "surprise": [1]},
     r"schema_drift between files part-0.parquet and part-1.parquet"),
    ({"request_id": ["c"], "watch_time_s": ["3.0"]}, r"schema_drift between files"),
])
def test_every_file_schema_is_read_not_only_the_first(cfg, tmp_path, monkeypatch, second,
                                                      message):
    from store.landing import LandingError, verify_landing

    _land(tmp_path, monkeypatch, cfg, {**ROWS, "part-1.parquet": second})[1](
        cfg, "raw_feedback", DS)
    with pytest.raises(LandingError, match=message):
        verify_landing(cfg, "raw_feedback", DS)


def test_duplicate_columns_and_non_parquet_files_are_refused(cfg, tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from store.landing import LandingError, verify_landing

    folder, seal = _land(tmp_path, monkeypatch, cfg, {})
    table = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["x", "x"])
    pq.write_table(table, f"{folder}/part-0.parquet")
    seal(cfg, "raw_feedback", DS)
    with pytest.raises(LandingError, match=r"duplicate column name\(s\) \['x'\]"):
        verify_landing(cfg, "raw_feedback", DS)
    open(f"{folder}/part-0.parquet", "wb").close()
    with pytest.raises(LandingError, match="is not a readable Parquet file"):
        seal(cfg, "raw_feedback", DS)
