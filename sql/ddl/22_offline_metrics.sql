-- Gold: offline evaluation, long format (one row per metric).
CREATE TABLE IF NOT EXISTS {db}.offline_metrics (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  model_version STRING NOT NULL COMMENT 'evaluated policy',
  algo STRING NOT NULL COMMENT 'learner name (fixed for the default weights)',
  role STRING NOT NULL COMMENT 'candidate (trained today) or current (serving today)',
  metric STRING NOT NULL COMMENT 'metric name, e.g. ncis/sigma_0.05, mtf_gauc, sim/uvc, losses/critic',
  value DOUBLE COMMENT 'value',
  ci_low DOUBLE COMMENT 'lower bound of the bootstrap 95% CI (null when none)',
  ci_high DOUBLE COMMENT 'upper bound of the bootstrap 95% CI (null when none)'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: offline metrics (long format)'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.offline_metrics ADD CONSTRAINT role_values CHECK (role IN ('candidate', 'current'));
