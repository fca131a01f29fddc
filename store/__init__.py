"""The storage library: Delta tables, views, the Spark session, the landing zone, snapshot
pinning for training and the policy registry's reads.

An engine floor beside `sim` and `model` (it imports only `core`): jobs and entry points
use it; it takes any config with `storage` and `spark` sections (`store.config.HasStorage`).

- `store.config`      StorageConfig (warehouse, local dir, metastore, database), SparkConfig
- `store.spark_conf`  the Spark conf of every session and spark-submit (light at import)
- `store.spark`       the one SparkSession builder
- `store.tables`      table names, DDL application, partition reads, idempotent writes
- `store.views`       the analysts' views (sql/views), fingerprinted
- `store.landing`     the landing zone of raw logs and its markers
- `store.snapshot`    pin a Delta version and its files for the Petastorm reader
- `store.registry`    which policy serves a day, and loading it with its checksum
"""
