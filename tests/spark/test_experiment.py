"""The policy-quality experiment: its statistics, and the tiny profile end to end (all six
learners, progressive rounds, report, plot and the Delta table experiment_results)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.settings import PROJECT_ROOT
from mtf.experiment import kendall, mean_ci, spearman

TINY = str(PROJECT_ROOT / "configs" / "experiment" / "tiny.yaml")


def test_rank_correlations_and_t_interval():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert spearman(x, [10, 20, 30, 40, 50]) == pytest.approx(1.0)
    assert spearman(x, [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # one swapped pair out of 10: tau = (9 - 1) / 10; rho = 1 - 6 * 2 / (5 * 24)
    assert kendall(x, [1, 2, 3, 5, 4]) == pytest.approx(0.8)
    assert spearman(x, [1, 2, 3, 5, 4]) == pytest.approx(0.9)
    assert np.isnan(spearman(x, [1, 1, 1, 1, 1])) and np.isnan(kendall(x, [2] * 5))
    m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    # t(0.975, 4) = 2.776, sd = sqrt(2.5)
    assert m == 3.0 and hi - m == pytest.approx(2.776 * np.sqrt(2.5) / np.sqrt(5), rel=1e-4)
    assert lo == pytest.approx(2 * m - hi)


def test_config_refuses_search_on_evaluation_seeds():
    from mtf.experiment import EvalPlan, ExperimentConfig

    with pytest.raises(ValueError, match="overlap"):
        ExperimentConfig(params={"cem": {"search_seeds": [101]}},
                         eval=EvalPlan(seeds=(101, 102, 103, 104, 105)))
    with pytest.raises(ValueError):
        ExperimentConfig(learners=("fixed", "dqn"))


def test_plan_yaml_refuses_unknown_keys_at_any_depth(tmp_path):
    from mtf.experiment import ExperimentConfig

    assert ExperimentConfig.from_yaml(TINY).data.behaviour == "unified_rl"
    for text, where in (("learnerz: [fixed]\n", "learnerz"), ("data: {dayz: 2}\n", "data.dayz"),
                        ("eval: {seedz: [1, 2]}\n", "eval.seedz")):
        (tmp_path / "plan.yaml").write_text(text)
        with pytest.raises(KeyError, match=where):
            ExperimentConfig.from_yaml(tmp_path / "plan.yaml")


@pytest.mark.spark
def test_tiny_experiment_end_to_end(spark, cfg, tmp_path):
    from mtf.experiment import main, write_table

    out = tmp_path / "exp"
    ds = "2030-07-01"
    assert main(["--config", TINY, "--out", str(out), "--ds", ds]) == 0
    report = (out / "report.md").read_text()
    learners = ("fixed", "cem", "batchrl_mtf", "unified_rl", "enhanced_rl",
                "enhanced_rl_selection")
    for name in learners:
        assert f"| {name} |" in report
    assert (out / "plot.png").stat().st_size > 10_000
    res = json.loads((out / "results.json").read_text())
    # progressive rounds: day 2 is served by UnifiedRL fitted on day 1
    assert res["meta"]["served"] == ["fixed-v0", "round1-unified_rl"]
    rows = {(r["learner"], r["metric"]): r for r in res["rows"]}
    for name in learners:
        uvc = rows[(name, "sim/uvc")]
        assert uvc["n"] == 5 and uvc["ci_low"] <= uvc["value"] <= uvc["ci_high"]
        assert uvc["value"] > 0 and 0.3 < rows[(name, "mtf_gauc")]["value"] < 1.0
    # the fixed learner IS the baseline: a paired change of exactly 0
    assert rows[("fixed", "sim/uvc_delta_pct")]["value"] == 0.0
    # identical fixed weights -> identical ground truth per seed (common random numbers)
    assert res["per_seed"]["fixed"] == res["baseline_fixed"]
    db = cfg.storage.database
    q = (f"SELECT learner, metric, value, ci_low, ci_high, n FROM {db}.experiment_results "
         f"WHERE ds = '{ds}' AND run_id = 'experiment_tiny'")
    got = spark.sql(q).collect()
    n_rows = len(res["rows"]) + len(res["rank_correlations"])
    # 10 rows per learner (with the selection value), 5 more per pair-level one (vs
    # UnifiedRL x2, request-mean x2, swapped slots); rank correlations: 4 offline metrics x
    # 2 truths x Spearman / Kendall, over the 6 fitted policies
    assert len(got) == n_rows == 6 * 10 + 2 * 5 + 16
    corr = [r for r in got if r["learner"] == "all"]
    assert {r["n"] for r in res["rank_correlations"]} == {6}
    assert len(corr) == 16 and all(-1.0 <= r["value"] <= 1.0 or np.isnan(r["value"])
                                  for r in corr)
    # rerunning replaces only this run's rows; another run_id on the same day is kept
    write_table(spark, db, ds, "experiment_tiny", res["rows"] + res["rank_correlations"])
    write_table(spark, db, ds, "other_run", res["rows"][:3])
    assert len(spark.sql(q).collect()) == n_rows
    assert spark.sql(f"SELECT count(*) AS c FROM {db}.experiment_results WHERE ds = '{ds}'"
                     ).first()["c"] == n_rows + 3


def test_training_seeds_give_one_fit_each_and_a_ci_over_them(tmp_path):
    from mtf.experiment import DataPlan, EvalPlan, ExperimentConfig, run

    exp = ExperimentConfig(run_id="seeds", profile="test", sim={"n_users": 40},
                           rl={"steps": 10, "batch_size": 16}, learners=("fixed", "unified_rl"),
                           train_seeds=(0, 1), data=DataPlan(days=1, behaviour="fixed"),
                           eval=EvalPlan(seeds=(101, 102), users=30, n_boot=5, value_steps=20))
    res = run(exp, tmp_path)
    fits = res["per_train_seed"]
    assert len(fits["fixed"]) == 1 and len(fits["unified_rl"]) == 2
    assert fits["unified_rl"][0] != fits["unified_rl"][1]  # the seed changes the policy
    mean = [float(np.mean(v)) for v in zip(*(f["uvc"] for f in fits["unified_rl"]))]
    assert res["per_seed"]["unified_rl"]["uvc"] == pytest.approx(mean)
    rows = {(r["learner"], r["metric"]): r for r in res["rows"]}
    train = rows[("unified_rl", "sim/uvc_delta_pct_train")]
    assert train["n"] == 2 and train["ci_low"] <= train["value"] <= train["ci_high"]
    assert ("fixed", "sim/uvc_delta_pct_train") not in rows
    assert "Over training seeds" in (tmp_path / "report.md").read_text()
    with pytest.raises(ValueError, match="distinct"):
        ExperimentConfig(train_seeds=(1, 1))


def test_pair_level_rows_against_unified_the_control_and_the_oracle(tmp_path):
    from mtf.experiment import DataPlan, EvalPlan, ExperimentConfig, run
    from mtf.experiment.stats import pct_change

    exp = ExperimentConfig(run_id="pair", profile="test", sim={"n_users": 40},
                           rl={"steps": 10, "batch_size": 16},
                           learners=("fixed", "unified_rl", "enhanced_rl_selection"),
                           train_seeds=(0, 1), data=DataPlan(days=1, behaviour="fixed"),
                           eval=EvalPlan(seeds=(101, 102), users=30, n_boot=5, value_steps=20,
                                         pair_oracle_beta=4.0))
    res = run(exp, tmp_path)
    rows = {(r["learner"], r["metric"]): r for r in res["rows"]}
    fits, uni = res["per_train_seed"]["enhanced_rl_selection"], res["per_train_seed"]["unified_rl"]
    # fit i against UnifiedRL's fit i, pooled over 2 fits x 2 evaluation seeds
    pooled = [d for f, u in zip(fits, uni) for d in pct_change(f["uvc"], u["uvc"])]
    vs = rows[("enhanced_rl_selection", "sim/uvc_vs_unified_rl_pct")]
    assert vs["n"] == 4 and vs["value"] == pytest.approx(np.mean(pooled))
    assert all(0 <= s <= 5 for f in fits for s in f["swapped"])
    assert len(res["request_mean_by_fit"]["enhanced_rl_selection"]) == 2
    assert ("enhanced_rl_selection", "sim/uvc_request_mean_delta_pct") in rows
    gain = rows[("enhanced_rl_selection", "sim/uvc_delta_pct")]["value"]
    top = rows[("pair_oracle_calibrated", "sim/uvc_delta_pct")]["value"]
    share = rows[("enhanced_rl_selection", "sim/uvc_oracle_share")]["value"]
    assert share == pytest.approx(gain / top)
    assert ("unified_rl", "serving/swapped_slots") not in rows  # user level: nothing to swap
    assert "| enhanced_rl_selection |" in (tmp_path / "report.md").read_text()
