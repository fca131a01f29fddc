-- Bronze: the top K candidates of each request by logged fused score (K = the simulator's
-- logged_candidates, at most data.candidates), the exposed l first: what a pair-level
-- policy's selection is learned from (docs/ALGORITHM.md section 9).
CREATE TABLE IF NOT EXISTS {db}.raw_candidates (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  request_id STRING NOT NULL COMMENT 'request key',
  item_id BIGINT NOT NULL COMMENT 'item key',
  cand_index INT NOT NULL COMMENT 'rank by logged fused score within the request, 0 = highest',
  preds ARRAY<FLOAT> NOT NULL COMMENT 'MTL predictions [7]: valid, watch, finish, like, share, collect, skip',
  cand_rank ARRAY<FLOAT> NOT NULL COMMENT 'rank of each prediction among all N candidates / (N-1) [7]',
  cand_z ARRAY<FLOAT> NOT NULL COMMENT 'z-score of each prediction among all N candidates, clipped, /3 [7]',
  action ARRAY<FLOAT> NOT NULL COMMENT 'logged normalised action of the pair (box centre + exploration, clipped) [10]',
  mu_bp ARRAY<FLOAT> NOT NULL COMMENT 'box centre of the pair [10]',
  score DOUBLE NOT NULL COMMENT 'logged log fused score: sum_i power_i log(obj_i + bias_i) under action',
  exposed BOOLEAN NOT NULL COMMENT 'true for the l items shown (the top l by score)',
  position INT COMMENT 'position in the exposed list (= cand_index), NULL when not exposed'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: logged candidates'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.raw_candidates ADD CONSTRAINT vec_len CHECK (size(preds) = 7 AND size(cand_rank) = 7 AND size(cand_z) = 7 AND size(action) = 10 AND size(mu_bp) = 10);
ALTER TABLE {db}.raw_candidates ADD CONSTRAINT cand_index_range CHECK (cand_index >= 0);
ALTER TABLE {db}.raw_candidates ADD CONSTRAINT exposed_position CHECK ((exposed AND position = cand_index) OR (NOT exposed AND position IS NULL));
