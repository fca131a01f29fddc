"""The experiment end to end: generate the logs, fit every learner (once per training seed),
score each against the ground truth and the offline metrics, write report.md, plot.png and
results.json (docs/EXPERIMENT.md).

torch is imported inside `run` (for its thread count): `import mtf.experiment` does not
load it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.policy import FixedWeightsPolicy
from mtf.experiment.config import ExperimentConfig
from mtf.experiment.data import fit_context, generate_data, has_seed, heldout_data, make_learner
from mtf.experiment.evaluate import (
    RequestMeanPolicy,
    ground_truth,
    offline_evaluator,
    offline_metrics,
    pair_oracle_truth,
    summarise,
)
from mtf.experiment.report import plot, report_markdown

log = logging.getLogger(__name__)


def run(exp: ExperimentConfig, out: Path) -> dict[str, Any]:
    """Generate, fit, evaluate; write report.md, plot.png and results.json under `out`."""
    import torch

    torch.set_num_threads(exp.torch_threads)
    t0 = time.perf_counter()
    cfg = exp.pipeline()
    ctx = fit_context(exp, cfg)
    train, served = generate_data(exp, cfg, ctx)
    held = heldout_data(exp, cfg)
    evaluator = offline_evaluator(held, exp, cfg.rl.gamma)
    baseline = ground_truth(FixedWeightsPolicy(), exp, cfg)
    oracle = (None if exp.eval.pair_oracle_beta is None
              else pair_oracle_truth(exp, cfg, exp.eval.pair_oracle_beta))
    per: dict[str, dict[str, Any]] = {}
    for name in exp.learners:
        fits: list[dict[str, list[float]]] = []
        controls: list[dict[str, list[float]]] = []
        offline: list[dict[str, Any]] = []
        for ts in exp.train_seeds or (None,):
            t1 = time.perf_counter()
            learner = make_learner(name, exp, cfg, ts)
            fitted = learner.fit(train, ctx)
            fit_s = time.perf_counter() - t1
            fits.append(ground_truth(fitted.policy, exp, cfg))
            offline.append(offline_metrics(fitted.policy, evaluator, exp))
            if learner.level == "pair":
                controls.append(ground_truth(RequestMeanPolicy(fitted.policy), exp, cfg))
            if len(fits) == 1:
                per[name] = {"level": learner.level, "fit_seconds": fit_s,
                             "fit_steps": fitted.info.get("steps", 0.0),
                             "offline": offline[0],
                             "final_losses": {k: float(np.mean(v[-50:])) for k, v in
                                              fitted.history.items()}}
            if not has_seed(name):
                break  # nothing random to vary (fixed)
        per[name]["truth"] = {m: [float(np.mean(v)) for v in zip(*(f[m] for f in fits))]
                              for m in ("uvc", "udt")}
        per[name]["truth_by_fit"] = fits
        per[name]["control_by_fit"] = controls
        per[name]["offline_by_fit"] = offline
        log.info("%s: fit %.0f s, UVC %.3f, NCIS %.3f", name, fit_s,
                 np.mean(per[name]["truth"]["uvc"]), per[name]["offline"]["ncis"][0])
    rows, corr = summarise(per, baseline, oracle)
    meta = {"served": served, "train_requests": len(train),
            "heldout_sessions": int(len(held.first_requests())),
            "seconds": time.perf_counter() - t0}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(report_markdown(exp, rows, corr, meta))
    plot(rows, out / "plot.png")
    result = {"config": exp.to_dict(), "meta": meta, "rows": rows, "rank_correlations": corr,
              "per_seed": {n: r["truth"] for n, r in per.items()}, "baseline_fixed": baseline,
              "per_train_seed": {n: r["truth_by_fit"] for n, r in per.items()},
              "request_mean_by_fit": {n: r["control_by_fit"] for n, r in per.items()
                                      if r["control_by_fit"]},
              "pair_oracle": oracle,
              "offline_by_fit": {n: r["offline_by_fit"] for n, r in per.items()},
              "final_losses": {n: r["final_losses"] for n, r in per.items()}}
    (out / "results.json").write_text(json.dumps(result, indent=1, default=float))
    return result
