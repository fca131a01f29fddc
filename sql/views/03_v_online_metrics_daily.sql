-- Online (logged) metrics per day, A/B arm and serving policy, with the policy's algorithm,
-- 95% CIs over users and the change against the arm's previous logged day (null on its
-- first day).
CREATE OR REPLACE VIEW {db}.v_online_metrics_daily
COMMENT 'Online UVC / UDT per day, A/B arm and serving policy version, with CIs and day-over-day change'
AS
SELECT o.ds, o.arm, o.policy_version,
       coalesce(r.algo, CASE WHEN o.policy_version LIKE 'fixed-%' THEN 'fixed' END) AS algo,
       r.ds AS policy_trained_ds,
       o.users, o.sessions, o.requests, o.uvc, o.udt, o.requests_per_session,
       o.uvc - 1.959964 * o.uvc_se AS uvc_ci_low, o.uvc + 1.959964 * o.uvc_se AS uvc_ci_high,
       o.udt - 1.959964 * o.udt_se AS udt_ci_low, o.udt + 1.959964 * o.udt_se AS udt_ci_high,
       o.uvc - lag(o.uvc) OVER (PARTITION BY o.arm ORDER BY o.ds, o.policy_version) AS uvc_change,
       o.udt - lag(o.udt) OVER (PARTITION BY o.arm ORDER BY o.ds, o.policy_version) AS udt_change
FROM {db}.online_metrics o
LEFT JOIN {db}.policy_registry r ON r.model_version = o.policy_version;
