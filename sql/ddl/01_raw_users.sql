-- Bronze: daily snapshot of user profiles (upstream in production; the simulator in the demo).
CREATE TABLE IF NOT EXISTS {db}.raw_users (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  user_id BIGINT NOT NULL COMMENT 'user key',
  age_bucket INT NOT NULL COMMENT 'age bucket 0..5',
  gender INT NOT NULL COMMENT '0/1',
  region INT NOT NULL COMMENT 'region 0..9',
  activity DOUBLE NOT NULL COMMENT 'activity level in [0, 1]',
  interest ARRAY<FLOAT> NOT NULL COMMENT 'interest vector [8]'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: user profiles, one snapshot per day'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false', 'delta.appendOnly' = 'false');
ALTER TABLE {db}.raw_users ADD CONSTRAINT interest_len CHECK (size(interest) = 8);
ALTER TABLE {db}.raw_users ADD CONSTRAINT activity_range CHECK (activity >= 0 AND activity <= 1);
