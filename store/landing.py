"""The landing zone: where raw daily logs arrive before validation.

Upstream (the simulator in the demo; log collectors in production) writes each bronze
table's day as Parquet under `<warehouse>/_landing/<table>/<ds>/` and then, LAST, the
manifest `_MANIFEST.json`: every data file with its size, row count and sha256, and the
day's row total. The manifest is the marker: a folder without one is a write in progress
that nobody reads (the rerun replaces it), and `landed` means what upstream said it wrote.
`validate_logs` checks the folder against its manifest before reading a row
(`verify_landing`): a missing, empty, truncated, changed or unlisted file, a file that is not
Parquet, or files whose schemas differ each fail the day with one line naming the table,
the file and the fix. Names starting with `_` or `.` are Hadoop's metadata (Spark's
`_SUCCESS`, checksum files) and are not data.

Spark writes the folders through Hadoop's FileSystem; the manifest and the checks go through
fsspec and pyarrow (no JVM: Airflow's `wait_for_logs` sensor pokes the markers cheaply), so
the same code works on a local disk and on an object store (s3a://, abfss://, gs://) given
the Hadoop connector on Spark's classpath and the fsspec implementation (s3fs, adlfs, gcsfs)
installed.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from core.checksum import stream_sha256
from core.ds import validate_ds
from core.errors import UserError
from store.config import HasStorage
from store.tables import BRONZE

MARKER = "_MANIFEST.json"
"""Written last by upstream: the day's files, sizes, row counts and checksums."""


class LandingError(UserError, ValueError):
    """A landed folder does not hold what its manifest says."""


def landing_path(cfg: HasStorage, table: str, ds: str) -> str:
    if table not in BRONZE:
        raise ValueError(f"{table!r} is not a bronze table ({', '.join(BRONZE)})")
    return f"{cfg.storage.landing_path()}/{table}/{validate_ds(ds)}"


def _fs(cfg: HasStorage) -> Any:
    import fsspec

    fs, _ = fsspec.core.url_to_fs(cfg.storage.landing_path())  # fs methods take the URLs
    return fs


def missing_landings(cfg: HasStorage, ds: str) -> list[str]:
    """The bronze tables whose day folder is not complete yet (no manifest), in BRONZE
    order."""
    fs = _fs(cfg)
    return [t for t in BRONZE if not fs.exists(f"{landing_path(cfg, t, ds)}/{MARKER}")]


def _data_files(fs: Any, path: str) -> list[str]:
    """Names of the data files of a folder (Hadoop's `_` / `.` metadata names excluded)."""
    if not fs.exists(path):
        return []
    names = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    return sorted(n for n in names if not n.startswith(("_", ".")))


def _sha256(fs: Any, file: str) -> str:
    with fs.open(file, "rb") as f:
        return stream_sha256(f)


def _footer(fs: Any, file: str) -> Any:
    """The Parquet footer (metadata) of a file; LandingError if it is not Parquet."""
    import pyarrow.parquet as pq

    try:
        with fs.open(file, "rb") as f:
            return pq.ParquetFile(f).metadata
    except Exception as e:  # pyarrow raises several types for a broken footer
        first = str(e).splitlines()[0] if str(e) else ""
        raise LandingError(f"{file} is not a readable Parquet file ({type(e).__name__}: "
                           f"{first})") from e


def _facts(fs: Any, file: str) -> dict[str, Any]:
    """Size, sha256 and Parquet row count of one file (LandingError if not Parquet)."""
    rows = _footer(fs, file).num_rows
    return {"bytes": int(fs.size(file)), "rows": int(rows), "sha256": _sha256(fs, file)}


def seal_landing(cfg: HasStorage, table: str, ds: str, expected_rows: int | None = None
                 ) -> dict[str, Any]:
    """Write the manifest of a landed folder (the last step of landing a table's day).

    `expected_rows` is what the writer meant to write; a folder holding another number of
    rows is not sealed (LandingError)."""
    fs, path = _fs(cfg), landing_path(cfg, table, ds)
    files = {name: _facts(fs, f"{path}/{name}") for name in _data_files(fs, path)}
    if not files:
        raise LandingError(f"{table} ds={ds}: no data file in {path} to seal")
    rows = sum(f["rows"] for f in files.values())
    if expected_rows is not None and rows != expected_rows:
        raise LandingError(f"{table} ds={ds}: wrote {expected_rows} rows but {path} holds "
                           f"{rows}: not sealed, land the day again")
    manifest = {"table": table, "ds": ds, "rows": rows, "files": files}
    with fs.open(f"{path}/{MARKER}", "w") as f:
        f.write(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def write_landing(df: DataFrame, cfg: HasStorage, table: str, ds: str,
                  expected_rows: int | None = None) -> str:
    """Replace the day's landed files of `table` with `df`, then seal them (manifest last).

    The old manifest goes first, so a rewrite killed half-way leaves an unsealed folder."""
    fs, path = _fs(cfg), landing_path(cfg, table, ds)
    if fs.exists(f"{path}/{MARKER}"):
        fs.rm(f"{path}/{MARKER}")
    df.write.mode("overwrite").parquet(path)
    seal_landing(cfg, table, ds, expected_rows)
    return path


def verify_landing(cfg: HasStorage, table: str, ds: str) -> dict[str, Any]:
    """The manifest of a landed folder, after checking the folder against it: the same data
    files (none missing, none unlisted), each of the recorded size, checksum and row count,
    all Parquet with one schema. LandingError names the table, the file and the fix."""
    fs, path = _fs(cfg), landing_path(cfg, table, ds)
    where = f"landed {table} ds={ds} ({path})"
    try:
        with fs.open(f"{path}/{MARKER}", "r") as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise LandingError(f"{where}: no {MARKER}: the day has not landed (or its writer "
                           f"died): land it again") from None
    except json.JSONDecodeError as e:
        raise LandingError(f"{where}: {MARKER} is not valid JSON ({e}): land it again") from e
    listed, present = manifest.get("files", {}), set(_data_files(fs, path))
    if not listed:
        raise LandingError(f"{where}: the manifest lists no file: land it again")
    missing, unlisted = sorted(set(listed) - present), sorted(present - set(listed))
    if missing:
        raise LandingError(f"{where}: file(s) in the manifest are missing: "
                           f"{', '.join(missing)}: land the day again")
    if unlisted:
        raise LandingError(f"{where}: file(s) not written by upstream: {', '.join(unlisted)}: "
                           f"remove them or land the day again")
    schemas = {}
    for name, want in sorted(listed.items()):
        file = f"{path}/{name}"
        size = int(fs.size(file))
        if size != want["bytes"]:
            raise LandingError(f"{where}: {name} has {size} bytes, the manifest says "
                               f"{want['bytes']} (truncated or replaced): land the day again")
        if _sha256(fs, file) != want["sha256"]:
            raise LandingError(f"{where}: {name} does not match its manifest checksum "
                               f"(changed after landing): land the day again")
        try:
            footer = _footer(fs, file)
        except LandingError as e:
            raise LandingError(f"{where}: {e}") from None
        if footer.num_rows != want["rows"]:
            raise LandingError(f"{where}: {name} holds {footer.num_rows} rows, the manifest "
                               f"says {want['rows']}: land the day again")
        schemas[name] = footer.schema.to_arrow_schema().remove_metadata()
    first, schema = next(iter(schemas.items()))
    dups = sorted({n for n in schema.names if schema.names.count(n) > 1})
    if dups:
        raise LandingError(f"{where}: duplicate column name(s) {dups} in {first}: land the "
                           f"day again with unique column names")
    for name, other in schemas.items():
        if not other.equals(schema):
            diff = sorted(set(map(str, other)) ^ set(map(str, schema)))
            raise LandingError(f"{where}: schema_drift between files {first} and {name}: "
                               f"{diff}: land the day again with one schema")
    if sum(f["rows"] for f in listed.values()) != manifest.get("rows"):
        raise LandingError(f"{where}: the manifest's row total does not add up: land it again")
    return manifest


def read_landing(spark: SparkSession, cfg: HasStorage, table: str, ds: str) -> DataFrame:
    """The landed rows as they are (their own schema: drift is checked by the caller)."""
    return spark.read.parquet(landing_path(cfg, table, ds))
