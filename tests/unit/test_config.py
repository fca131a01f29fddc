"""One config loader: profiles, overrides, unknown keys."""

from __future__ import annotations

import re

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
    with pytest.raises(ValueError, match="unknown config profile 'no-such-profile'"):
        load_config("no-such-profile")


@pytest.mark.parametrize("profile", ["../../configs/experiment/tiny", "/etc/passwd", "test/.."])
def test_profiles_are_names_not_paths(profile):
    with pytest.raises(ValueError, match="unknown config profile"):
        load_config(profile)


@pytest.mark.parametrize("override,error", [
    ("rl.steps=abc", "rl.steps must be int, got 'abc'"),
    ("eval.n_boot=abc", "eval.n_boot must be int"),
    ("quality.max_watch_time_s=1 OR 1=1", "quality.max_watch_time_s must be float"),
    ("gate.use_simulator=1", "gate.use_simulator must be bool"),
    ("rl.steps=true", "rl.steps must be int"),
    ("rl.grad_clip=x", "rl.grad_clip must be float | None"),
    ("eval.sigmas=[0.1, a]", "eval.sigmas must be tuple[float, ...], got (0.1, 'a') ([1]: "),
    ("spark.extra_conf={spark.x: 1}", "spark.extra_conf must be dict[str, str]"),
    ("alerts.smtp_to=ops@example.com", "alerts.smtp_to must be tuple[str, ...]"),
])
def test_override_values_are_type_checked(override, error):
    with pytest.raises(TypeError, match=re.escape(error)):
        load_config("test", [override])


@pytest.mark.parametrize("override,error", [
    ("spark.connect=maybe", "spark.connect must be 'auto', 'off' or an sc://host:port URL"),
    ("data.candidates=-3", "candidates >= 0"),
    ("data.eval_fraction=1.5", "0 <= eval_fraction < 1"),
])
def test_values_out_of_range_are_refused_at_load(override, error):
    with pytest.raises(ValueError, match=re.escape(error)):
        load_config("test", [override])


def test_numbers_accept_ints_and_optionals_accept_none():
    cfg = load_config("test", ["quality.max_watch_time_s=100", "rl.grad_clip=null",
                               "eval.sigmas=[0.05, 1]", "alerts.smtp_to=[ops@example.com]"])
    assert cfg.quality.max_watch_time_s == 100 and cfg.rl.grad_clip is None
    assert cfg.eval.sigmas == (0.05, 1) and cfg.alerts.smtp_to == ("ops@example.com",)


@pytest.mark.parametrize("override", ["algo=../../etc", "algo=enhanced rl",
                                      "storage.database=mtf; DROP TABLE x"])
def test_names_that_reach_sql_or_paths_are_identifiers(override):
    with pytest.raises(ValueError, match="must be a plain name"):
        load_config("test", [override])


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
