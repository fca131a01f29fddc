-- Gold: data-quality checks per day, table and rule.
CREATE TABLE IF NOT EXISTS {db}.dq_metrics (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  table_name STRING NOT NULL COMMENT 'checked table',
  rule STRING NOT NULL COMMENT 'rule name',
  rows_checked BIGINT NOT NULL COMMENT 'rows the rule looked at',
  rows_failed BIGINT NOT NULL COMMENT 'rows that broke it'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: data-quality metrics'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
