-- Online (logged) metrics per day and serving policy, with the policy's algorithm and
-- the change against the previous logged day (null on the first day).
CREATE OR REPLACE VIEW {db}.v_online_metrics_daily
COMMENT 'Online UVC / UDT per day and serving policy version, with day-over-day change'
AS
SELECT o.ds, o.policy_version,
       coalesce(r.algo, CASE WHEN o.policy_version LIKE 'fixed-%' THEN 'fixed' END) AS algo,
       r.ds AS policy_trained_ds,
       o.users, o.sessions, o.requests, o.uvc, o.udt, o.requests_per_session,
       o.uvc - lag(o.uvc) OVER (ORDER BY o.ds, o.policy_version) AS uvc_change,
       o.udt - lag(o.udt) OVER (ORDER BY o.ds, o.policy_version) AS udt_change
FROM {db}.online_metrics o
LEFT JOIN {db}.policy_registry r ON r.model_version = o.policy_version;
