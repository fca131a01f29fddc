"""User errors end in one usage line (exit 2), never in a traceback."""

from __future__ import annotations

import pytest

from mtf.cli import main


@pytest.mark.parametrize("argv,message", [
    (["gate", "--ds", "2026-13-01"], "--ds must be a real day YYYY-MM-DD, got '2026-13-01'"),
    (["gate", "--ds", "2026-01-01", "--set", "rl.steps=abc"],
     "config rl.steps must be int, got 'abc'"),
    (["gate", "--ds", "2026-01-01", "--set", "eval.n_boot=abc"], "eval.n_boot must be int"),
    (["gate", "--ds", "2026-01-01", "--set", "rl.no_such=1"], "unknown EnhancedRLConfig keys"),
    (["gate", "--ds", "2026-01-01", "--profile", "nope"], "unknown config profile 'nope'"),
    (["demo", "--start", "2026-02-30"], "got '2026-02-30'"),
    (["sql", "SELECT 1", "--profile", "../../x"], "unknown config profile"),
    (["run", "--ds", "2026/01/01"], "--ds must be YYYY-MM-DD"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_sql_on_a_warehouse_that_does_not_exist_refuses(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTF_WAREHOUSE", str(tmp_path / "warehuose"))  # a typo
    monkeypatch.delenv("MTF_METASTORE_DIR", raising=False)
    assert main(["sql", "SELECT 1"]) == 2
    assert "mtf sql: no catalog at" in capsys.readouterr().err
    assert not (tmp_path / "warehuose").exists()  # nothing created


def test_an_error_the_person_can_act_on_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MTF_LOCAL_DIR", str(tmp_path))  # no candidate was evaluated there
    assert main(["gate", "--ds", "2026-01-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtf gate: GateError: no evaluation record")
    assert "rerun evaluate" in err[0]


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    def broken(argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("mtf.cli.step_main", lambda step: broken)
    with pytest.raises(ZeroDivisionError):
        main(["gate", "--ds", "2026-01-01"])


def test_demo_refuses_a_future_day_before_starting_anything(capsys):
    """Airflow's scheduler never runs a logical date after now: say so, do not wait forever."""
    assert main(["demo", "--days", "2", "--start", "2999-12-30"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "day 2999-12-31 is in the future" in err[0]
    assert "--dags-test" in err[0]
