"""Pin a Delta snapshot for training: its version and the exact Parquet files to read.

Petastorm must never be pointed at a Delta table directory (it would read files that
were logically removed by later commits). We ask Delta for the files of one version,
keep those of the wanted partitions, and record the version with the model.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from core.ds import window_days
from store.tables import qualified, table_location, table_version


@dataclass
class Snapshot:
    """A pinned slice of one Delta table."""

    table: str
    version: int
    location: str
    days: list[str]
    split: str
    files: list[str] = field(default_factory=list)
    rows: int = 0

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Snapshot:
        return cls(**json.loads(Path(path).read_text()))


def _partition_values(path: str) -> dict[str, str]:
    out = {}
    for part in unquote(path).split("/"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def resolve_snapshot(spark: SparkSession, db: str, table: str, ds: str, days: int,
                     split: str = "train") -> Snapshot:
    """Files of `table` at its current version for the `days` days ending at `ds`."""
    version = table_version(spark, db, table)
    location = table_location(spark, db, table)
    wanted = window_days(ds, days)
    df = spark.read.format("delta").option("versionAsOf", version).load(location)
    files = sorted(f for f in df.inputFiles()
                   if _partition_values(f).get("ds") in wanted
                   and _partition_values(f).get("split", split) == split)
    rows = df.where(F.col("ds").isin(wanted) & (F.col("split") == split)).count()
    present = sorted({_partition_values(f)["ds"] for f in files})
    if not files:
        raise RuntimeError(f"{qualified(db, table)}@v{version} has no {split} files for {wanted}")
    return Snapshot(table=qualified(db, table), version=version, location=location,
                    days=present, split=split, files=files, rows=rows)
