-- Bronze: daily snapshot of the item catalogue.
CREATE TABLE IF NOT EXISTS {db}.raw_items (
  ds STRING NOT NULL COMMENT 'day partition, YYYY-MM-DD',
  item_id BIGINT NOT NULL COMMENT 'item key',
  category INT NOT NULL COMMENT 'category 0..7',
  author_id BIGINT NOT NULL COMMENT 'author key',
  duration_s DOUBLE NOT NULL COMMENT 'item duration in seconds',
  item_vec ARRAY<FLOAT> NOT NULL COMMENT 'item feature vector [8]',
  popularity DOUBLE NOT NULL COMMENT 'popularity in [0, 1]'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Bronze: item catalogue, one snapshot per day'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.raw_items ADD CONSTRAINT item_vec_len CHECK (size(item_vec) = 8);
ALTER TABLE {db}.raw_items ADD CONSTRAINT duration_pos CHECK (duration_s > 0);
