-- Quarantine of each bronze table (a template: store/tables.py stamps it once per bronze
-- table, {bronze} = raw_users, raw_items, raw_requests, raw_exposures, raw_feedback,
-- raw_candidates):
-- landed rows that broke a soft rule of validate_logs, kept whole (the original row as
-- JSON) with the rules they broke, so nothing is lost and a fixed row can be replayed.
-- Replaced per day like every partition, so a rerun gives the same rows.
CREATE TABLE IF NOT EXISTS {db}.{bronze}_quarantine (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  run_id STRING NOT NULL COMMENT 'run that quarantined the row',
  rule STRING NOT NULL COMMENT 'first rule broken (own rule before session_quarantined)',
  rules ARRAY<STRING> NOT NULL COMMENT 'every rule the row broke',
  row_key STRING COMMENT 'key of the row as text (null when the key itself is null)',
  record STRING NOT NULL COMMENT 'the landed row, all columns, as JSON'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Quarantine: rejected rows of {bronze}'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
