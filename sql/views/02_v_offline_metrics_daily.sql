-- Offline evaluation per day, algorithm and role, one column per headline metric
-- (offline_metrics is long format: one row per metric).
CREATE OR REPLACE VIEW {db}.v_offline_metrics_daily
COMMENT 'Offline metrics per day, algo and role (candidate / current), wide'
AS
SELECT ds, algo, role, model_version,
       max(CASE WHEN metric = 'ncis/sigma_0.05' THEN value END) AS ncis_s005,
       max(CASE WHEN metric = 'ncis/sigma_0.1' THEN value END) AS ncis_s01,
       max(CASE WHEN metric = 'ncis/sigma_0.1' THEN ci_low END) AS ncis_s01_ci_low,
       max(CASE WHEN metric = 'ncis/sigma_0.1' THEN ci_high END) AS ncis_s01_ci_high,
       max(CASE WHEN metric = 'mtf_gauc' THEN value END) AS mtf_gauc,
       max(CASE WHEN metric = 'sim/uvc' THEN value END) AS sim_uvc,
       max(CASE WHEN metric = 'sim/udt' THEN value END) AS sim_udt,
       max(CASE WHEN metric = 'losses/critic' THEN value END) AS critic_loss,
       count(*) AS n_metrics
FROM {db}.offline_metrics
GROUP BY ds, algo, role, model_version;
