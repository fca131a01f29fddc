-- Candidate (trained on ds) against the current policy (serving ds), per day and metric:
-- absolute and relative delta, whether the candidate's CI clears the current value, and
-- what the gate decided (policy_registry.status / reason).
CREATE OR REPLACE VIEW {db}.v_policy_comparison
COMMENT 'Candidate vs current policy per day and metric, with deltas and the gate decision'
AS
SELECT c.ds, c.metric,
       c.model_version AS candidate_version, cur.model_version AS current_version,
       c.value AS candidate_value, c.ci_low AS candidate_ci_low, c.ci_high AS candidate_ci_high,
       cur.value AS current_value,
       c.value - cur.value AS delta,
       CASE WHEN cur.value IS NULL OR cur.value = 0 THEN NULL
            ELSE (c.value - cur.value) / abs(cur.value) END AS rel_delta,
       CASE WHEN c.ci_low IS NULL OR cur.value IS NULL THEN NULL
            ELSE c.ci_low > cur.value END AS candidate_ci_above_current,
       r.status AS decision, r.reason
FROM {db}.offline_metrics c
JOIN {db}.offline_metrics cur
  ON cur.ds = c.ds AND cur.metric = c.metric AND cur.role = 'current'
LEFT JOIN {db}.policy_registry r ON r.model_version = c.model_version
WHERE c.role = 'candidate';
