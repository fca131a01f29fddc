-- Gold: fusion weights the published actor gives the day's pairs, plus a per-user fallback.
CREATE TABLE IF NOT EXISTS {db}.fusion_weights (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  model_version STRING NOT NULL COMMENT 'published policy version',
  user_id BIGINT NOT NULL COMMENT 'user key',
  item_id BIGINT NOT NULL COMMENT 'item key, -1 = per-user fallback (mean over the pairs of the user)',
  action ARRAY<FLOAT> NOT NULL COMMENT 'normalised action [10]',
  power_valid DOUBLE NOT NULL, power_watch DOUBLE NOT NULL, power_finish DOUBLE NOT NULL,
  power_interact DOUBLE NOT NULL, power_noskip DOUBLE NOT NULL,
  bias_valid DOUBLE NOT NULL, bias_watch DOUBLE NOT NULL, bias_finish DOUBLE NOT NULL,
  bias_interact DOUBLE NOT NULL, bias_noskip DOUBLE NOT NULL
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: published fusion weights per pair'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.fusion_weights ADD CONSTRAINT action_len CHECK (size(action) = 10);
ALTER TABLE {db}.fusion_weights ADD CONSTRAINT power_range CHECK (power_valid BETWEEN 0 AND 2 AND power_watch BETWEEN 0 AND 2 AND power_finish BETWEEN 0 AND 2 AND power_interact BETWEEN 0 AND 2 AND power_noskip BETWEEN 0 AND 2);
ALTER TABLE {db}.fusion_weights ADD CONSTRAINT bias_range CHECK (bias_valid BETWEEN 0.01 AND 0.51 AND bias_watch BETWEEN 0.01 AND 0.51 AND bias_finish BETWEEN 0.01 AND 0.51 AND bias_interact BETWEEN 0.01 AND 0.51 AND bias_noskip BETWEEN 0.01 AND 0.51);
