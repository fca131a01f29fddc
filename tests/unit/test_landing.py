"""The landing zone's completeness check (store/landing.py, jobs/check_logs.py): markers read
through fsspec, for a plain path and for a URI-style warehouse, without Spark."""

from __future__ import annotations

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
