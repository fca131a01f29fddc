"""The one Spark session builder.

Three ways to a session, one config:
- **Spark Connect client** (`store.service.connect_url`): the warehouse's long-lived Spark
  service, or a configured `sc://` server. The server holds the catalog and the conf.
- **Under `spark-submit`** (the cluster path of the Airflow DAGs): the JVM already exists
  with the conf given on the command line, so the builder only attaches to it.
- **In-process JVM**: local master by default; master, warehouse root and extra conf come
  from the config / environment (see pipeline.config).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from store.config import HasStorage
from store.service import connect_url
from store.spark_conf import delta_package, spark_conf

log = logging.getLogger(__name__)


def _under_spark_submit() -> bool:
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(cfg: HasStorage, app_name: str = "mtf") -> SparkSession:
    """Return a Delta-enabled, catalog-backed SparkSession (database cfg.storage.database)."""
    url = None if _under_spark_submit() else connect_url(cfg)
    if url:
        spark = SparkSession.builder.remote(url).getOrCreate()
        log.info("%s: Spark Connect client of %s", app_name, url)
    else:
        spark = _classic(cfg, app_name)
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.storage.database}")
    return spark


def _classic(cfg: HasStorage, app_name: str) -> SparkSession:
    if not cfg.storage.is_remote():
        Path(cfg.storage.warehouse_path()).mkdir(parents=True, exist_ok=True)
    metastore = cfg.storage.metastore_path()
    Path(metastore).mkdir(parents=True, exist_ok=True)
    # Python workers run the same interpreter as the driver (the project's environment)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    conf = spark_conf(cfg)
    if not _under_spark_submit():
        builder = builder.master(cfg.spark.master)
        conf["spark.jars.packages"] = ",".join(
            p for p in [delta_package(), conf.get("spark.jars.packages", "")] if p)
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
