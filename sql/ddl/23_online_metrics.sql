-- Gold: what users did under each A/B arm and serving policy, from the day's logs, with
-- standard errors over users and the lift against the holdout arm (core/ab.py).
CREATE TABLE IF NOT EXISTS {db}.online_metrics (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  arm STRING NOT NULL COMMENT 'online A/B arm: current, holdout or canary',
  policy_version STRING NOT NULL COMMENT 'serving policy',
  users BIGINT NOT NULL COMMENT 'active users',
  sessions BIGINT NOT NULL COMMENT 'sessions',
  requests BIGINT NOT NULL COMMENT 'requests',
  uvc DOUBLE NOT NULL COMMENT 'valid consumptions per active user',
  udt DOUBLE NOT NULL COMMENT 'watch seconds per active user',
  requests_per_session DOUBLE NOT NULL COMMENT 'mean session depth',
  uvc_se DOUBLE COMMENT 'standard error of uvc over the active users',
  udt_se DOUBLE COMMENT 'standard error of udt over the active users',
  uvc_lift DOUBLE COMMENT 'uvc / holdout uvc - 1 (null for the holdout and without one)',
  uvc_lift_low DOUBLE COMMENT '95% CI of uvc_lift, low end (delta method)',
  uvc_lift_high DOUBLE COMMENT '95% CI of uvc_lift, high end',
  udt_lift DOUBLE COMMENT 'udt / holdout udt - 1',
  udt_lift_low DOUBLE COMMENT '95% CI of udt_lift, low end',
  udt_lift_high DOUBLE COMMENT '95% CI of udt_lift, high end',
  regression BOOLEAN COMMENT 'the arm is worse than the holdout beyond ab.regression_threshold'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: online metrics per day, A/B arm and serving policy'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
