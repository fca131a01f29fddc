-- Silver: one row per request list, ready for list-level TD (flat fixed-width arrays for Petastorm).
CREATE TABLE IF NOT EXISTS {db}.enhanced_state (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  split STRING NOT NULL COMMENT 'train or eval (stable hash of session_id)',
  request_id STRING NOT NULL COMMENT 'request key',
  session_id STRING NOT NULL COMMENT 'session key',
  user_id BIGINT NOT NULL COMMENT 'user key',
  request_index INT NOT NULL COMMENT '0-based index in the session',
  n_items INT NOT NULL COMMENT 'exposed items present (<= l)',
  mask ARRAY<FLOAT> NOT NULL COMMENT 'present-item mask [l]',
  item_ids ARRAY<BIGINT> NOT NULL COMMENT 'exposed item ids by position [l] (-1 = padding)',
  pair_state ARRAY<FLOAT> NOT NULL COMMENT 'enhanced pair states, flat [l*D]',
  action ARRAY<FLOAT> NOT NULL COMMENT 'logged normalised actions, flat [l*10]',
  box_center ARRAY<FLOAT> NOT NULL COMMENT 'box centres mu_bp, flat [l*10]',
  reward_watch ARRAY<FLOAT> NOT NULL COMMENT 'critic-set 0 reward per pair [l]',
  reward_other ARRAY<FLOAT> NOT NULL COMMENT 'critic-set 1 reward per pair [l]',
  valid ARRAY<FLOAT> NOT NULL COMMENT 'valid-consumption label per pair [l]',
  next_pair_state ARRAY<FLOAT> NOT NULL COMMENT 'next request pair states, flat [l*D] (zeros when done)',
  next_box_center ARRAY<FLOAT> NOT NULL COMMENT 'next request box centres, flat [l*10]',
  next_mask ARRAY<FLOAT> NOT NULL COMMENT 'next request mask [l] (zeros when done)',
  done FLOAT NOT NULL COMMENT '1 when the session ended after this request',
  cand_state ARRAY<FLOAT> NOT NULL COMMENT 'pair states of the logged candidates, flat [K*D], slot k = cand_index k (K = data.candidates; slots 0..l-1 are the exposed positions)',
  cand_center ARRAY<FLOAT> NOT NULL COMMENT 'box centres mu_bp of the logged candidates, flat [K*10]',
  cand_mask ARRAY<FLOAT> NOT NULL COMMENT 'present-candidate mask [K] (all zeros when the request has no candidate rows)',
  next_cand_state ARRAY<FLOAT> COMMENT 'next request candidate pair states, flat [K*D] (zeros when done; NULL unless data.next_candidates)',
  next_cand_center ARRAY<FLOAT> COMMENT 'next request candidate box centres, flat [K*10] (zeros when done; NULL unless data.next_candidates)',
  next_cand_mask ARRAY<FLOAT> COMMENT 'next request candidate mask [K] (zeros when done; NULL unless data.next_candidates)'
) USING DELTA PARTITIONED BY (ds, split)
COMMENT 'Silver: enhanced-state request lists for EnhancedRL (list-level TD)'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.enhanced_state ADD CONSTRAINT widths CHECK (size(mask) = 5 AND size(pair_state) = 300 AND size(action) = 50 AND size(box_center) = 50 AND size(next_pair_state) = 300 AND size(next_box_center) = 50 AND size(next_mask) = 5 AND size(reward_watch) = 5 AND size(reward_other) = 5);
ALTER TABLE {db}.enhanced_state ADD CONSTRAINT done_flag CHECK (done IN (0.0, 1.0));
ALTER TABLE {db}.enhanced_state ADD CONSTRAINT split_name CHECK (split IN ('train', 'eval'));
ALTER TABLE {db}.enhanced_state ADD CONSTRAINT cand_widths CHECK (size(cand_state) = 60 * size(cand_mask) AND size(cand_center) = 10 * size(cand_mask));
ALTER TABLE {db}.enhanced_state ADD CONSTRAINT next_cand_widths CHECK ((next_cand_state IS NULL AND next_cand_center IS NULL AND next_cand_mask IS NULL) OR (next_cand_state IS NOT NULL AND next_cand_center IS NOT NULL AND next_cand_mask IS NOT NULL AND size(next_cand_mask) = size(cand_mask) AND size(next_cand_state) = 60 * size(cand_mask) AND size(next_cand_center) = 10 * size(cand_mask)));
