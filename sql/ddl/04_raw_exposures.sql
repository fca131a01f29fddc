-- Bronze: the l items exposed by each request, with MTL predictions and candidate-set stats.
CREATE TABLE IF NOT EXISTS {db}.raw_exposures (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  request_id STRING NOT NULL COMMENT 'request key',
  item_id BIGINT NOT NULL COMMENT 'item key',
  position INT NOT NULL COMMENT 'position in the exposed list, 0 = top',
  preds ARRAY<FLOAT> NOT NULL COMMENT 'MTL predictions [7]: valid, watch, finish, like, share, collect, skip',
  cand_rank ARRAY<FLOAT> NOT NULL COMMENT 'rank of each prediction among the candidates / (N-1) [7]',
  cand_z ARRAY<FLOAT> NOT NULL COMMENT 'z-score of each prediction among the candidates, clipped, /3 [7]',
  action ARRAY<FLOAT> NOT NULL COMMENT 'logged normalised action of the pair [10]',
  mu_bp ARRAY<FLOAT> NOT NULL COMMENT 'box centre of the pair [10]'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: exposures'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.raw_exposures ADD CONSTRAINT vec_len CHECK (size(preds) = 7 AND size(cand_rank) = 7 AND size(cand_z) = 7 AND size(action) = 10 AND size(mu_bp) = 10);
ALTER TABLE {db}.raw_exposures ADD CONSTRAINT position_range CHECK (position >= 0 AND position < 5);
