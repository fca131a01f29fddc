-- Gold: the policy-quality experiment (mtf/experiment.py, docs/EXPERIMENT.md), long format.
-- One row per (learner, metric) of a run; rank correlations across learners use learner 'all'.
-- A run replaces only its own rows: replaceWhere ds = <ds> AND run_id = <run_id>.
CREATE TABLE IF NOT EXISTS {db}.experiment_results (
  ds STRING NOT NULL COMMENT 'day the experiment was run for (partition), YYYY-MM-DD',
  run_id STRING NOT NULL COMMENT 'experiment name (run_id of the config, e.g. experiment, experiment_tiny)',
  learner STRING NOT NULL COMMENT 'fixed, cem, batchrl_mtf, unified_rl, enhanced_rl; all for rank correlations',
  level STRING NOT NULL COMMENT 'policy level: fixed, user, pair; all for rank correlations',
  metric STRING NOT NULL COMMENT 'sim/uvc, sim/udt, sim/uvc_delta_pct, sim/udt_delta_pct, ncis, mtf_gauc, fit/seconds, fit/steps, rank/<spearman|kendall>_<ncis|mtf_gauc>_vs_<uvc|udt>',
  value DOUBLE NOT NULL COMMENT 'mean over the held-out seeds (sim/*), the estimate (ncis, mtf_gauc) or the coefficient (NaN when undefined)',
  ci_low DOUBLE COMMENT 'lower bound of the 95% CI: t-interval over seeds (sim/*), bootstrap over sessions (ncis); null when none',
  ci_high DOUBLE COMMENT 'upper bound of the 95% CI; null when none',
  n BIGINT NOT NULL COMMENT 'sample size behind the value: seeds, sessions, pairs or policies'
) USING DELTA PARTITIONED BY (ds)
COMMENT 'Gold: policy-quality experiment results (long format)'
TBLPROPERTIES ('delta.enableDeletionVectors' = 'false');
ALTER TABLE {db}.experiment_results ADD CONSTRAINT experiment_level_values CHECK (level IN ('fixed', 'user', 'pair', 'all'));
ALTER TABLE {db}.experiment_results ADD CONSTRAINT experiment_ci_order CHECK (ci_low IS NULL OR ci_high IS NULL OR ci_low <= ci_high);
