"""The publication gate: a bad model is never published.

`decide(eval_record, gate_cfg)` is a pure function of the evaluation record written by
jobs/evaluate.py. It refuses a candidate whose weights or actions are non-finite or out
of range, whose exported actor disagrees with the eager one, or whose offline (NCIS,
MTF-GAUC) or simulator (UVC) metrics regress beyond the configured thresholds against
the policy serving today. `run` writes `gate.json` next to the candidate's artifacts;
publish records the decision and its reasons in the registry either way.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from core.artifact import Artifact
from core.errors import UserError
from pipeline.config import GateConfig
from pipeline.entry import parse_job_args
from pipeline.provenance import artifact_dir

log = logging.getLogger("jobs.gate")


@dataclass
class GateDecision:
    publish: bool
    reasons: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)


def _value(rec: dict, role: str, metric: str) -> float | None:
    m = rec.get(role, {}).get("metrics", {}).get(metric)
    return None if m is None or m.get("value") is None else float(m["value"])


def decide(rec: dict, cfg: GateConfig) -> GateDecision:
    d = GateDecision(publish=True)

    def refuse(reason: str) -> None:
        d.publish = False
        d.reasons.append(reason)

    checks = rec.get("checks", {})
    d.checked.append("params_finite")
    if not checks.get("params_finite", False):
        refuse("actor parameters are not all finite")
    acts = checks.get("actions", {})
    d.checked.append("actions_in_range")
    if not acts.get("finite", False):
        refuse("actor produced non-finite actions")
    elif acts.get("min", 0.0) < -1.0 - 1e-6 or acts.get("max", 0.0) > 1.0 + 1e-6:
        refuse(f"actions outside [-1, 1]: min {acts.get('min')}, max {acts.get('max')}")
    d.checked.append("export_parity")
    parity = checks.get("parity_max_abs_diff")
    if parity is None or not math.isfinite(parity) or parity > cfg.parity_atol:
        refuse(f"exported actor differs from eager actor by {parity} (> {cfg.parity_atol})")

    # NCIS is noisy (few sessions carry most of the weight): a regression is a candidate
    # whose whole bootstrap CI lies below the current policy's value minus the tolerance.
    for metric in [k for k in rec.get("candidate", {}).get("metrics", {}) if
                   k.startswith("ncis/")]:
        cand, cur = _value(rec, "candidate", metric), _value(rec, "current", metric)
        hi = rec["candidate"]["metrics"][metric].get("ci_high", cand)
        hi = cand if hi is None else float(hi)
        d.checked.append(metric)
        if cand is None or not math.isfinite(cand):
            refuse(f"{metric} is not finite ({cand})")
        elif cur is not None and math.isfinite(cur) and hi < cur - abs(cur) * cfg.max_ncis_drop:
            refuse(f"{metric} regressed: CI high {hi:.4f} < {cur:.4f} - "
                   f"{cfg.max_ncis_drop:.0%}")
    cand, cur = _value(rec, "candidate", "mtf_gauc"), _value(rec, "current", "mtf_gauc")
    d.checked.append("mtf_gauc")
    if cand is None or not math.isfinite(cand):
        refuse(f"mtf_gauc is not finite ({cand})")
    elif cur is not None and math.isfinite(cur) and cand < cur - cfg.max_gauc_drop:
        refuse(f"mtf_gauc regressed: {cand:.4f} < {cur:.4f} - {cfg.max_gauc_drop}")
    if cfg.use_simulator:
        cand, cur = _value(rec, "candidate", "sim/uvc"), _value(rec, "current", "sim/uvc")
        d.checked.append("sim/uvc")
        if cand is None or not math.isfinite(cand):
            refuse(f"sim/uvc is not finite ({cand})")
        elif cur is not None and cand < cur * (1 - cfg.max_sim_uvc_drop):
            refuse(f"sim/uvc regressed: {cand:.4f} < {cur:.4f} - {cfg.max_sim_uvc_drop:.0%}")
    return d


class GateError(UserError, RuntimeError):
    """The gate cannot decide: the candidate has no evaluation record."""


def run(artifact_dir: Path, cfg: GateConfig) -> GateDecision:
    path = Artifact(artifact_dir).eval
    if not path.exists():
        raise GateError(f"no evaluation record {path}: the evaluate step did not complete for "
                        f"this candidate; rerun evaluate, then the gate")
    rec = json.loads(path.read_text())
    decision = decide(rec, cfg)
    Artifact(artifact_dir).gate.write_text(json.dumps(asdict(decision), indent=1))
    log.info("gate %s: %s %s", rec.get("model_version"),
             "PUBLISH" if decision.publish else "REJECT", "; ".join(decision.reasons))
    return decision


def main(argv: Sequence[str] | None = None) -> int:
    def extra(p) -> None:
        p.add_argument("--reject-exit-code", type=int, default=0,
                       help="exit code on a refusal (default 0: a refusal is a decision, not "
                            "a failure; publish records it). The daily DAG uses 99, which "
                            "ends its gate task `skipped` with an alert")

    args, cfg = parse_job_args("Gate today's candidate policy", argv, extra)
    decision = run(artifact_dir(cfg, args.ds), cfg.gate)
    return 0 if decision.publish else args.reject_exit_code


if __name__ == "__main__":
    raise SystemExit(main())
