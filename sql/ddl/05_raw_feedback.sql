-- Bronze: what the user did with each exposed item, and the session exit event.
CREATE TABLE IF NOT EXISTS {db}.raw_feedback (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  request_id STRING NOT NULL COMMENT 'request key',
  item_id BIGINT NOT NULL COMMENT 'item key',
  watch_time_s DOUBLE NOT NULL COMMENT 'seconds watched',
  valid INT NOT NULL COMMENT '1 when watch_time_s > 10',
  finish INT NOT NULL COMMENT '1 when watched to the end',
  `like` INT NOT NULL COMMENT '1 when liked',
  share INT NOT NULL COMMENT '1 when shared',
  collect INT NOT NULL COMMENT '1 when collected',
  skip INT NOT NULL COMMENT '1 when skipped quickly',
  exit_after_request INT NOT NULL COMMENT '1 when the user left the session after this request'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: feedback per exposure'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.raw_feedback ADD CONSTRAINT watch_nonneg CHECK (watch_time_s >= 0);
