"""The one way a job starts: its arguments, its config, its logging and its Spark session.

Every job's `main(argv)` is one call here, so `--ds`, `--profile` and `--set` mean the same
thing for every step, from the `mtf` command line, from Airflow and from `spark-submit`:

    def main(argv=None) -> int:
        return spark_job_main("evaluate", __doc__, argv,
                              lambda spark, cfg, a: run(spark, cfg, a.ds))
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from core.ds import validate_ds
from pipeline.config import PipelineConfig, load_config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def ds_arg(value: str) -> str:
    """argparse type of a day: the reason in the usage error, not `invalid value`."""
    try:
        return validate_ds(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def load_config_or_exit(parser: argparse.ArgumentParser, profile: str | None,
                        overrides: list[str]) -> PipelineConfig:
    """load_config, a bad profile or `--set` ending as one usage line (exit 2), no
    traceback."""
    try:
        return load_config(profile, overrides)
    except (KeyError, TypeError, ValueError) as e:
        parser.error(e.args[0] if e.args else str(e))
        raise  # parser.error exits; this keeps type checkers informed


def config_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add --profile and --set (the config of every command)."""
    p.add_argument("--profile", default=None,
                   help="pipeline profile configs/pipeline/<name>.yaml "
                        "(default: $MTF_PROFILE or demo)")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="SECTION.FIELD=VALUE", help="override a config field (repeatable)")
    return p


def job_parser(description: str, ds: bool = True) -> argparse.ArgumentParser:
    """--ds (when the job is for one day), --profile, --set."""
    p = argparse.ArgumentParser(description=description)
    if ds:
        p.add_argument("--ds", required=True, type=ds_arg, help="day partition YYYY-MM-DD")
    return config_arguments(p)


def parse_job_args(description: str, argv: Sequence[str] | None,
                   extra: Callable[[argparse.ArgumentParser], Any] | None = None,
                   ds: bool = True) -> tuple[argparse.Namespace, PipelineConfig]:
    """Parse a job's arguments (`extra` adds its own), set up logging, load its config."""
    parser = job_parser(_first_line(description), ds=ds)
    if extra:
        extra(parser)
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    setup_logging()
    return args, load_config_or_exit(parser, args.profile, args.overrides)


def spark_job_main(name: str, description: str | None, argv: Sequence[str] | None,
                   body: Callable[[SparkSession, PipelineConfig, argparse.Namespace], Any],
                   extra: Callable[[argparse.ArgumentParser], Any] | None = None) -> int:
    """A Spark job's `main`: parse, then `body(spark, cfg, args)` on the session
    `mtf-<name>-<ds>`. Returns the exit code 0 (a failure raises)."""
    from store.spark import get_spark

    args, cfg = parse_job_args(description or name, argv, extra)
    body(get_spark(cfg, f"mtf-{name}-{args.ds}"), cfg, args)
    return 0


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("py4j", "matplotlib", "petastorm"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _first_line(doc: str) -> str:
    return doc.strip().splitlines()[0] if doc.strip() else doc
