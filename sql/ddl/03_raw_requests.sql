-- Bronze: one row per feed request, with the serving policy's box centre and logged action.
CREATE TABLE IF NOT EXISTS {db}.raw_requests (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  request_id STRING NOT NULL COMMENT 'request key',
  session_id STRING NOT NULL COMMENT 'session key',
  user_id BIGINT NOT NULL COMMENT 'user key',
  request_index INT NOT NULL COMMENT '0-based index of the request in its session',
  ts_ms BIGINT NOT NULL COMMENT 'request time, epoch milliseconds UTC',
  hour INT NOT NULL COMMENT 'hour of day 0..23',
  device INT NOT NULL COMMENT 'device 0..2',
  network INT NOT NULL COMMENT '0 wifi, 1 cellular',
  policy_version STRING NOT NULL COMMENT 'fusion policy that served the request',
  arm STRING NOT NULL COMMENT 'online A/B arm of the user: current, holdout or canary',
  action ARRAY<FLOAT> NOT NULL COMMENT 'logged normalised action [10] (pair-level: mean over exposed pairs)',
  mu_bp ARRAY<FLOAT> NOT NULL COMMENT 'box centre of the serving policy [10] (pair-level: mean)',
  noise ARRAY<FLOAT> NOT NULL COMMENT 'exploration noise eps [10]',
  explore_half_width DOUBLE NOT NULL COMMENT 'half-width of the exploration box',
  n_candidates INT NOT NULL COMMENT 'N candidates scored',
  cand_pred_mean ARRAY<FLOAT> NOT NULL COMMENT 'mean MTL prediction per head over the candidates [7]',
  cand_pred_std ARRAY<FLOAT> NOT NULL COMMENT 'std of MTL prediction per head over the candidates [7]'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: feed requests'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.raw_requests ADD CONSTRAINT action_len CHECK (size(action) = 10 AND size(mu_bp) = 10 AND size(noise) = 10);
ALTER TABLE {db}.raw_requests ADD CONSTRAINT cand_len CHECK (size(cand_pred_mean) = 7 AND size(cand_pred_std) = 7);
ALTER TABLE {db}.raw_requests ADD CONSTRAINT hour_range CHECK (hour >= 0 AND hour < 24);
ALTER TABLE {db}.raw_requests ADD CONSTRAINT request_index_range CHECK (request_index >= 0);
