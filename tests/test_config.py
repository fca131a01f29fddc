"""One config loader: profiles, overrides, unknown keys."""

from __future__ import annotations

import pytest

from mtf.config import load_config


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
