"""One config loader: profiles, overrides, unknown keys."""

from __future__ import annotations

import pytest

from pipeline.config import load_config


def test_profiles_load_and_differ():
    demo, paper, test = load_config("demo"), load_config("paper"), load_config("test")
    assert paper.rl.steps == 300_000 and paper.rl.batch_size == 256
    assert test.rl.steps < demo.rl.steps < paper.rl.steps
    assert test.profile == "test"
    assert tuple(test.rl.critic_hidden) == (32, 32)


def test_overrides_and_unknown_keys():
    cfg = load_config("test", ["rl.steps=7", "reward.w_share=0.5", "eval.sigmas=[0.2]"])
    assert cfg.rl.steps == 7 and cfg.reward.w_share == 0.5 and cfg.eval.sigmas == (0.2,)
    with pytest.raises(KeyError):
        load_config("test", ["rl.no_such_field=1"])
    with pytest.raises(FileNotFoundError):
        load_config("no-such-profile")


def test_round_trip_to_dict():
    d = load_config("test").to_dict()
    assert d["rl"]["steps"] == 20 and d["sim"]["n_users"] == 150
    assert set(d) >= {"sim", "reward", "rl", "data", "eval", "gate", "spark", "storage"}


def test_local_dir_follows_a_local_warehouse_and_is_required_with_a_uri(monkeypatch, tmp_path):
    for var in ("MTF_WAREHOUSE", "MTF_LOCAL_DIR", "MTF_METASTORE_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MTF_WAREHOUSE", str(tmp_path / "wh"))
    st = load_config("test").storage
    assert not st.is_remote() and st.local_path() == str(tmp_path / "wh")
    assert st.artifacts_path() == str(tmp_path / "wh" / "_artifacts")
    assert st.metastore_path() == str(tmp_path / "wh" / "_metastore")
    monkeypatch.setenv("MTF_WAREHOUSE", "s3a://bucket/mtf")
    st = load_config("test").storage
    assert st.is_remote() and st.landing_path() == "s3a://bucket/mtf/_landing"
    with pytest.raises(ValueError, match="MTF_LOCAL_DIR"):
        st.artifacts_path()
    monkeypatch.setenv("MTF_LOCAL_DIR", str(tmp_path / "local"))
    assert st.artifacts_path() == str(tmp_path / "local" / "_artifacts")
    assert st.reports_path() == str(tmp_path / "local" / "_reports")
    assert st.metastore_path() == str(tmp_path / "local" / "_metastore")
