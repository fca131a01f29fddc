"""Spark configuration for every job, in one place (light: safe to import in DAG files).

Used by `store.spark.get_spark` for in-process sessions and by the DAGs, which hand the
same conf to `spark-submit` through the Spark provider's operator.
"""

from __future__ import annotations

from importlib import metadata

from store.config import HasStorage


def delta_package() -> str:
    """Maven coordinate of Delta's jar matching the installed delta-spark (Scala 2.13)."""
    version = metadata.version("delta-spark")
    return f"io.delta:delta-spark_2.13:{version}"


def spark_conf(cfg: HasStorage) -> dict[str, str]:
    warehouse = cfg.storage.warehouse_path()
    metastore = cfg.storage.metastore_path()
    conf = {
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": warehouse,
        # embedded Derby metastore: tables are registered by name and survive the process
        "spark.hadoop.javax.jdo.option.ConnectionURL":
            f"jdbc:derby:;databaseName={metastore}/metastore_db;create=true",
        "spark.driver.extraJavaOptions":
            f"-Dderby.system.home={metastore} {cfg.spark.driver_java_options}".strip(),
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism":
            str(cfg.spark.listing_parallelism),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.schema.autoMerge.enabled": "false",
        "spark.driver.memory": cfg.spark.driver_memory,
    }
    conf.update(cfg.spark.extra_conf)
    return conf
