-- Silver: one row per request at user level (UnifiedRL / BatchRL-MTF baselines).
CREATE TABLE IF NOT EXISTS {db}.user_state (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  split STRING NOT NULL COMMENT 'train or eval',
  request_id STRING NOT NULL COMMENT 'request key',
  session_id STRING NOT NULL COMMENT 'session key',
  user_id BIGINT NOT NULL COMMENT 'user key',
  request_index INT NOT NULL COMMENT '0-based index in the session',
  user_state ARRAY<FLOAT> NOT NULL COMMENT 'user-level state [35]',
  action ARRAY<FLOAT> NOT NULL COMMENT 'request-level logged action [10]',
  box_center ARRAY<FLOAT> NOT NULL COMMENT 'request-level box centre [10]',
  reward_watch FLOAT NOT NULL COMMENT 'critic-set 0 list reward',
  reward_other FLOAT NOT NULL COMMENT 'critic-set 1 list reward',
  next_user_state ARRAY<FLOAT> NOT NULL COMMENT 'next request user state [35] (zeros when done)',
  next_box_center ARRAY<FLOAT> NOT NULL COMMENT 'next request box centre [10]',
  done FLOAT NOT NULL COMMENT '1 when the session ended after this request'
) USING DELTA PARTITIONED BY (ds, split)
COMMENT 'Silver: user-level request states'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.user_state ADD CONSTRAINT widths CHECK (size(user_state) = 35 AND size(next_user_state) = 35 AND size(action) = 10 AND size(box_center) = 10 AND size(next_box_center) = 10);
