"""The per-pair headroom study, an ORACLE that reads the simulator's truth (docs/EXPERIMENT.md,
"Is there anything to gain per pair?"): how much a pair-level policy could gain over a
user-level one inside the same box, and whether EnhancedRL uses its per-pair freedom
(`PairActionProbe`). Writes headroom.md and headroom.json; nothing goes to Delta.

torch is imported inside `headroom`: `import mtf.experiment` does not load it.
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
from mtf.experiment.data import fit_context, generate_data, make_learner
from mtf.experiment.evaluate import PairActionProbe
from mtf.experiment.stats import mean_ci, pct_change
from sim.oracle import TARGETS, PairBoxOracle, StateDecoder, UserBoxOracle
from sim.simulator import evaluate_policy, evaluation_world

log = logging.getLogger(__name__)

HEADROOM_TARGETS = TARGETS
"""Every target of the oracles (sim/oracle.py): truth, calibrated, and mtl (the raw
predictions, a heuristic that reads no truth)."""


def headroom(exp: ExperimentConfig, out: Path, beta: float, n_draws: int = 32
             ) -> dict[str, Any]:
    """How much a pair-level policy can gain over a user-level one inside the same box.

    Centres: the fixed weights and UnifiedRL fitted on the experiment's logs (the best
    user-level learner). Around each, the user- and pair-level ORACLES of
    sim/oracle.py (targets truth / calibrated, and mtl: the raw predictions, a
    heuristic that reads no truth) within the logs' box half-width, served to the held-out
    populations: UVC / UDT change vs the centre, paired over the seeds. Also EnhancedRL
    fitted on the same logs, with a PairActionProbe (does it use its per-pair freedom?).
    """
    import torch

    torch.set_num_threads(exp.torch_threads)
    t0 = time.perf_counter()
    cfg = exp.pipeline()
    h = cfg.sim.explore_half_width
    ctx = fit_context(exp, cfg)
    train, served = generate_data(exp, cfg, ctx)
    centres = {"fixed": FixedWeightsPolicy(),
               "unified_rl": make_learner("unified_rl", exp, cfg).fit(train, ctx).policy}
    enhanced = make_learner("enhanced_rl", exp, cfg).fit(train, ctx).policy
    per_seed: dict[str, dict[str, list[float]]] = {}

    def add(name: str, r: dict[str, float]) -> None:
        d = per_seed.setdefault(name, {"uvc": [], "udt": []})
        d["uvc"].append(r["uvc"])
        d["udt"].append(r["udt"])

    probes = []
    for s in exp.eval.seeds:
        dec = StateDecoder(evaluation_world(cfg.sim, s, exp.eval.users))
        probe = PairActionProbe(enhanced)
        probes.append(probe)
        add("enhanced_rl", evaluate_policy(cfg.sim, probe, seed=s, n_users=exp.eval.users))
        for cname, c in centres.items():
            add(cname, evaluate_policy(cfg.sim, c, seed=s, n_users=exp.eval.users))
            for tgt in HEADROOM_TARGETS:
                for lvl, pol in (("user", UserBoxOracle(c, dec, h, tgt, beta, n_draws)),
                                 ("pair", PairBoxOracle(c, dec, h, tgt, beta))):
                    add(f"{cname}+{lvl}_oracle_{tgt}",
                        evaluate_policy(cfg.sim, pol, seed=s, n_users=exp.eval.users))
        log.info("headroom seed %d done (%.0f s)", s, time.perf_counter() - t0)
    rows = []
    for name, d in per_seed.items():
        vs = name.split("+")[0] if "+" in name else "fixed"
        ref = per_seed[vs]
        row: dict[str, Any] = {"policy": name, "vs": vs}
        for m in ("uvc", "udt"):
            row[m] = mean_ci(d[m])
            row[f"{m}_delta_pct"] = mean_ci(pct_change(d[m], ref[m]))
        rows.append(row)
    probe_stats = {"action_spread": float(np.mean([np.mean(p.spread) for p in probes])),
                   "changed_slots": float(np.mean([np.mean(p.changed) for p in probes]))}
    result = {"config": exp.to_dict(), "beta": beta, "half_width": h, "n_draws": n_draws,
              "served": served, "train_requests": len(train), "rows": rows,
              "per_seed": per_seed, "enhanced_probe": probe_stats,
              "seconds": time.perf_counter() - t0}
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Per-pair headroom (ORACLE, reads the simulator's truth), `{exp.run_id}`", "",
             f"Box half-width {h}, utility E[valid] + {beta} E[d satisfaction], "
             f"{len(exp.eval.seeds)} held-out populations of {exp.eval.users} users. "
             f"EnhancedRL probe: mean within-request action std {probe_stats['action_spread']:.4f}"
             f", exposed slots changed vs its request-mean action "
             f"{100 * probe_stats['changed_slots']:.1f}%. Wall time {result['seconds']:.0f} s.",
             "", "| policy | vs | UVC | dUVC % [95% CI] | dUDT % [95% CI] |",
             "|---|---|---|---|---|"]
    for r in rows:
        u, du, dt_ = r["uvc"], r["uvc_delta_pct"], r["udt_delta_pct"]
        lines.append(f"| {r['policy']} | {r['vs']} | {u[0]:.2f} | {du[0]:+.2f} "
                     f"[{du[1]:+.2f}, {du[2]:+.2f}] | {dt_[0]:+.2f} "
                     f"[{dt_[1]:+.2f}, {dt_[2]:+.2f}] |")
    (out / "headroom.md").write_text("\n".join(lines) + "\n")
    (out / "headroom.json").write_text(json.dumps(result, indent=1, default=float))
    return result
