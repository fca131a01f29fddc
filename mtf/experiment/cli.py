"""The experiment's command line, `python -m mtf.experiment` and `mtf experiment`:

    python -m mtf.experiment --config configs/experiment/default.yaml --out runs/experiment \\
        --ds 2026-11-29 [--no-spark] [--headroom BETA]

`store.spark` is imported inside `main`, only for the Delta write: it loads pyspark.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from core.settings import PROJECT_ROOT
from mtf.experiment.config import ExperimentConfig
from mtf.experiment.headroom import headroom
from mtf.experiment.runner import run
from mtf.experiment.table import TABLE, write_table
from pipeline.entry import ds_arg, setup_logging

log = logging.getLogger(__name__)

DESCRIPTION = ("The policy-quality experiment: every learner on the same simulated logs, "
               "scored against the simulator's ground truth and by the offline metrics.")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the experiment of `--config` (or, with --headroom, the headroom study) and print
    its report; the rows go to experiment_results unless --no-spark. Returns 0."""
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--config", default=str(PROJECT_ROOT / "configs/experiment/default.yaml"),
                   help="experiment plan YAML (configs/experiment/*.yaml)")
    p.add_argument("--out", required=True, help="folder for report.md, plot.png, results.json")
    p.add_argument("--ds", required=True, type=ds_arg,
                   help="partition of experiment_results, YYYY-MM-DD (an argument, never "
                        "the clock: a rerun replaces the same rows)")
    p.add_argument("--no-spark", action="store_true", help="skip the Delta write")
    p.add_argument("--headroom", type=float, metavar="BETA", default=None,
                   help="instead of the experiment: the per-pair headroom ORACLES with "
                        "utility E[valid] + BETA E[satisfaction change] (headroom.md / .json; "
                        "no Delta write)")
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    exp = ExperimentConfig.from_yaml(args.config)
    if args.headroom is not None:
        headroom(exp, Path(args.out), args.headroom)
        print((Path(args.out) / "headroom.md").read_text())
        return 0
    result = run(exp, Path(args.out))
    print((Path(args.out) / "report.md").read_text())
    if not args.no_spark:
        from store.spark import get_spark

        cfg = exp.pipeline()
        spark = get_spark(cfg, f"mtf-experiment-{exp.run_id}")
        n = write_table(spark, cfg.storage.database, args.ds, exp.run_id,
                        result["rows"] + result["rank_correlations"])
        log.info("wrote %d rows to %s.%s (ds=%s, run_id=%s)", n, cfg.storage.database, TABLE,
                 args.ds, exp.run_id)
    return 0
