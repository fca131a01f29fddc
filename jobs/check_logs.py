"""Step `check-logs`: have every bronze table's raw logs for day ds landed?

No Spark: it looks for the `_MANIFEST.json` markers through fsspec (store/landing.py). Airflow's
`wait_for_logs` sensor pokes the same function (`logs_landed`) until it is true or the
sensor times out; `mtf check-logs --ds D` fails (exit 1) while something is missing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pipeline.config import PipelineConfig, load_config
from pipeline.entry import parse_job_args
from store.landing import missing_landings

log = logging.getLogger("jobs.check_logs")


def run(cfg: PipelineConfig, ds: str) -> None:
    missing = missing_landings(cfg, ds)
    if missing:
        raise RuntimeError(f"logs for ds={ds} not landed yet (no _MANIFEST.json): "
                           f"{', '.join(missing)}")
    log.info("every bronze table's logs for %s have landed", ds)


def logs_landed(ds: str, profile: str) -> bool:
    """The sensor's poke: True when all five markers are there (logs what is missing)."""
    missing = missing_landings(load_config(profile), ds)
    if missing:
        log.info("waiting for the logs of %s: no _MANIFEST.json yet for %s", ds,
                 ", ".join(missing))
    return not missing


def main(argv: Sequence[str] | None = None) -> int:
    args, cfg = parse_job_args(__doc__, argv)
    run(cfg, args.ds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
