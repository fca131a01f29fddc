-- Gold: data-quality metrics of validate_logs, per day, table and rule, with the count
-- reconciliation (rule '_all': rows_checked = input rows, rows_failed = quarantined rows,
-- so accepted = rows_checked - rows_failed = the day's rows in the bronze table).
CREATE TABLE IF NOT EXISTS {db}.dq_metrics (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  run_id STRING NOT NULL COMMENT 'run that checked the day (Airflow run id or manual__<ds>)',
  table_name STRING NOT NULL COMMENT 'checked bronze table',
  rule STRING NOT NULL COMMENT 'rule name (see jobs/validate_logs.py RULES), or _all for the reconciliation',
  severity STRING NOT NULL COMMENT 'soft (row quarantined), cascade (row of a quarantined session) or summary',
  rows_checked BIGINT NOT NULL COMMENT 'rows the rule looked at (the landed rows of the table)',
  rows_failed BIGINT NOT NULL COMMENT 'rows that broke it (for _all: rows quarantined)'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: data-quality metrics and count reconciliation of the bronze logs'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.dq_metrics ADD CONSTRAINT dq_counts CHECK (rows_failed >= 0 AND rows_failed <= rows_checked);
