-- Gold: what users did under each serving policy, from the day's logs.
CREATE TABLE IF NOT EXISTS {db}.online_metrics (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  policy_version STRING NOT NULL COMMENT 'serving policy',
  users BIGINT NOT NULL COMMENT 'active users',
  sessions BIGINT NOT NULL COMMENT 'sessions',
  requests BIGINT NOT NULL COMMENT 'requests',
  uvc DOUBLE NOT NULL COMMENT 'valid consumptions per active user',
  udt DOUBLE NOT NULL COMMENT 'watch seconds per active user',
  requests_per_session DOUBLE NOT NULL COMMENT 'mean session depth'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: online metrics per day and serving policy'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
