"""The policy-quality experiment: every learner on the same simulated logs, scored against
the simulator's ground truth and by the offline metrics (docs/EXPERIMENT.md).

    python -m mtf.experiment --config configs/experiment/default.yaml --out runs/experiment

1. Data. `data.days` days are simulated with box exploration on the training population.
   Day 1 is served by the production default weights; with `data.behaviour = <learner>`
   day d+1 is served by that learner fitted on days <= d (progressive rounds,
   docs/ALGORITHM.md section 4), with `fixed` every day is. Every learner trains on the same
   days.
2. Fit. Each learner of `learners` is fitted on all days (model/learners).
3. Ground truth. Each policy is served without exploration to >= 5 held-out simulator
   populations (`eval.seeds`, fresh users, common random numbers across policies):
   UVC / UDT mean and 95% t-interval over the seeds, and the paired change vs the fixed
   weights in % (same seeds, so the CI is of the difference itself).
4. Offline metrics on held-out logs (a separate day served by the fixed weights with box
   exploration): NCIS (bootstrap CI over sessions) and MTF-GAUC, then the Spearman /
   Kendall rank correlation of each with the ground truth across the policies.
5. Outputs under --out: report.md, plot.png, results.json; rows in the Delta table
   `experiment_results` (unless --no-spark), replacing only this (ds, run_id).

Nothing here tunes the simulator: its parameters come from the pipeline profile.

The modules, one concern each:

    config.py    the plan: ExperimentConfig, DataPlan, EvalPlan (configs/experiment/*.yaml)
    stats.py     t-interval, paired % change, Spearman / Kendall
    data.py      learners of the plan, training days (progressive rounds), held-out day
    evaluate.py  ground truth, NCIS / MTF-GAUC, summary and rank-correlation rows
    report.py    report.md and plot.png
    table.py     the Delta table experiment_results
    runner.py    `run`: the steps above end to end
    headroom.py  the per-pair headroom ORACLE study (--headroom)
    cli.py       `main`, the command line (also `mtf experiment`)

Importing the package loads neither torch, pyspark nor matplotlib: each is imported inside
the function that needs it.
"""

from mtf.experiment.cli import main
from mtf.experiment.config import ALL_LEARNERS, DataPlan, EvalPlan, ExperimentConfig
from mtf.experiment.data import generate_data, heldout_data
from mtf.experiment.evaluate import (
    PairActionProbe,
    RequestMeanPolicy,
    ground_truth,
    offline_evaluator,
    offline_metrics,
    summarise,
)
from mtf.experiment.headroom import HEADROOM_TARGETS, headroom
from mtf.experiment.report import plot, report_markdown
from mtf.experiment.runner import run
from mtf.experiment.stats import kendall, mean_ci, spearman
from mtf.experiment.table import TABLE, write_table

__all__ = ["ALL_LEARNERS", "DataPlan", "EvalPlan", "ExperimentConfig", "HEADROOM_TARGETS",
           "PairActionProbe", "RequestMeanPolicy", "TABLE", "generate_data", "ground_truth",
           "headroom", "heldout_data", "kendall", "main", "mean_ci", "offline_evaluator",
           "offline_metrics", "plot",
           "report_markdown", "run", "spearman", "summarise", "write_table"]
