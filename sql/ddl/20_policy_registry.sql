-- Gold: every trained candidate and what became of it.
CREATE TABLE IF NOT EXISTS {db}.policy_registry (
  model_version STRING NOT NULL COMMENT 'policy version key',
  algo STRING NOT NULL COMMENT 'learner name',
  ds STRING NOT NULL COMMENT 'day whose data trained it (it serves from the next day on)',
  artifact_uri STRING NOT NULL COMMENT 'exported actor (TorchScript)',
  artifact_sha256 STRING NOT NULL COMMENT 'sha256 of the exported actor, verified at load',
  level STRING NOT NULL COMMENT 'pair or user',
  config_json STRING NOT NULL COMMENT 'resolved config',
  seed BIGINT NOT NULL COMMENT 'training seed',
  git_sha STRING NOT NULL COMMENT 'code version',
  data_versions STRING NOT NULL COMMENT 'JSON: table -> Delta version read for training',
  status STRING NOT NULL COMMENT 'candidate, published, rejected or rolled_back',
  reason STRING COMMENT 'why rejected / rolled back',
  updated_at_ds STRING NOT NULL COMMENT 'day of the run that last changed the row'
) USING DELTA
COMMENT 'Gold: fusion policy registry'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.policy_registry ADD CONSTRAINT status_values CHECK (status IN ('candidate', 'published', 'rejected', 'rolled_back'));
ALTER TABLE {db}.policy_registry ADD CONSTRAINT sha_len CHECK (length(artifact_sha256) = 64);
