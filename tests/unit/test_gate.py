"""The gate refuses bad candidates, with reasons."""

from __future__ import annotations

import copy
import math

import pytest

from jobs.gate import decide
from pipeline.config import GateConfig

GOOD = {
    "model_version": "enhanced_rl-2030-01-01",
    "checks": {"params_finite": True, "parity_max_abs_diff": 1e-7,
               "actions": {"finite": True, "min": -0.9, "max": 0.95}},
    "candidate": {"metrics": {"ncis/sigma_0.1": {"value": 10.0}, "mtf_gauc": {"value": 0.70},
                              "sim/uvc": {"value": 5.0}}},
    "current": {"metrics": {"ncis/sigma_0.1": {"value": 10.2}, "mtf_gauc": {"value": 0.71},
                            "sim/uvc": {"value": 5.1}}},
}


def _with(path, value):
    rec = copy.deepcopy(GOOD)
    node = rec
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value
    return rec


def test_good_candidate_within_thresholds_is_published():
    d = decide(GOOD, GateConfig())
    assert d.publish and d.reasons == []
    assert {"params_finite", "export_parity", "mtf_gauc", "sim/uvc"} <= set(d.checked)


def test_refusals():
    cfg = GateConfig(max_ncis_drop=0.05, max_gauc_drop=0.02, max_sim_uvc_drop=0.03)
    cases = {
        "parameters": _with(["checks", "params_finite"], False),
        "non-finite actions": _with(["checks", "actions", "finite"], False),
        "outside": _with(["checks", "actions", "max"], 1.5),
        "exported actor": _with(["checks", "parity_max_abs_diff"], 1e-2),
        "ncis/sigma_0.1 regressed": _with(["candidate", "metrics", "ncis/sigma_0.1"],
                                          {"value": 9.0, "ci_low": 8.0, "ci_high": 9.5}),
        "ncis/sigma_0.1 is not finite": _with(["candidate", "metrics", "ncis/sigma_0.1", "value"],
                                              math.nan),
        "mtf_gauc regressed": _with(["candidate", "metrics", "mtf_gauc", "value"], 0.6),
        "sim/uvc regressed": _with(["candidate", "metrics", "sim/uvc", "value"], 4.5),
    }
    for needle, rec in cases.items():
        d = decide(rec, cfg)
        assert not d.publish, needle
        assert any(needle in r for r in d.reasons), (needle, d.reasons)


def test_simulator_check_can_be_switched_off():
    rec = _with(["candidate", "metrics", "sim/uvc", "value"], 1.0)
    assert not decide(rec, GateConfig()).publish
    assert decide(rec, GateConfig(use_simulator=False)).publish


def test_ncis_within_its_confidence_interval_is_not_a_regression():
    rec = _with(["candidate", "metrics", "ncis/sigma_0.1"],
                {"value": 6.0, "ci_low": 3.0, "ci_high": 12.0})
    assert decide(rec, GateConfig()).publish


def test_gate_without_an_evaluation_says_so(tmp_path):
    from jobs.gate import GateError, run
    from pipeline.config import GateConfig

    with pytest.raises(GateError, match="no evaluation record .*eval.json.*rerun evaluate"):
        run(tmp_path, GateConfig())
    assert not (tmp_path / "gate.json").exists()
