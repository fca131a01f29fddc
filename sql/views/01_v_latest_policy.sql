-- The policy that serves from tomorrow on: the newest published row of policy_registry
-- (same rule as store/registry.py serving_policy: newest training day, then version).
CREATE OR REPLACE VIEW {db}.v_latest_policy
COMMENT 'Newest published fusion policy (serves from serves_from_ds on)'
AS
SELECT model_version, algo, level, ds AS trained_ds,
       CAST(date_add(CAST(ds AS DATE), 1) AS STRING) AS serves_from_ds,
       artifact_uri, artifact_sha256, seed, git_sha, data_versions, updated_at_ds
FROM (
  SELECT *, row_number() OVER (ORDER BY ds DESC, model_version DESC) AS rn
  FROM {db}.policy_registry
  WHERE status = 'published'
) AS p
WHERE rn = 1;
