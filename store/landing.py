"""The landing zone: where raw daily logs arrive before validation.

Upstream (the simulator in the demo; log collectors in production) writes each bronze
table's day as Parquet under `<warehouse>/_landing/<table>/<ds>/`; the `_SUCCESS` marker
is written last (Spark's output committer does it at job commit), so a writer killed
half-way leaves a folder without a marker that nobody reads, and the rerun replaces it.
`validate_logs` reads only marked folders, checks them and writes bronze + quarantine.

Spark reads and writes the folders through Hadoop's FileSystem, and the markers are checked
through fsspec (no JVM: Airflow's `wait_for_logs` sensor pokes them cheaply), so the same
code works on a local disk and on an object store (s3a://, abfss://, gs://) given the Hadoop
connector on Spark's classpath and the fsspec implementation (s3fs, adlfs, gcsfs) installed.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession

from core.ds import validate_ds
from store.config import HasStorage
from store.tables import BRONZE

MARKER = "_SUCCESS"


def landing_path(cfg: HasStorage, table: str, ds: str) -> str:
    if table not in BRONZE:
        raise ValueError(f"{table!r} is not a bronze table ({', '.join(BRONZE)})")
    return f"{cfg.storage.landing_path()}/{table}/{validate_ds(ds)}"


def missing_landings(cfg: HasStorage, ds: str) -> list[str]:
    """The bronze tables whose day folder is not complete yet (no marker), in BRONZE order."""
    import fsspec

    fs, _ = fsspec.core.url_to_fs(cfg.storage.landing_path())  # fs methods take the URLs
    return [t for t in BRONZE if not fs.exists(f"{landing_path(cfg, t, ds)}/{MARKER}")]


def write_landing(df: DataFrame, cfg: HasStorage, table: str, ds: str) -> str:
    """Replace the day's landed files of `table` with `df` (marker written last)."""
    path = landing_path(cfg, table, ds)
    df.write.mode("overwrite").parquet(path)
    return path


def read_landing(spark: SparkSession, cfg: HasStorage, table: str, ds: str) -> DataFrame:
    """The landed rows as they are (their own schema: drift is checked by the caller)."""
    return spark.read.parquet(landing_path(cfg, table, ds))
