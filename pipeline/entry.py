"""Argument parsing and logging shared by every job's `main(argv)`."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from core.ds import validate_ds
from pipeline.config import PipelineConfig, load_config


def job_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--ds", required=True, type=validate_ds, help="day partition YYYY-MM-DD")
    p.add_argument("--profile", default=None, help="config profile (default: $MTF_PROFILE or demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.FIELD=VALUE", help="override a config field (repeatable)")
    return p


def parse_job_args(description: str, argv: Sequence[str] | None,
                   extra: callable | None = None) -> tuple[argparse.Namespace, PipelineConfig]:
    parser = job_parser(description)
    if extra:
        extra(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    return args, load_config(args.profile, args.overrides)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "matplotlib", "petastorm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
