-- The online A/B per day: each arm against the holdout arm (the fixed default weights),
-- the lift of UVC and UDT with its 95% CI (delta method, core/ab.py), whether the CI
-- excludes 0, and whether the arm regressed beyond ab.regression_threshold. Days without a
-- holdout arm have no row.
CREATE OR REPLACE VIEW {db}.v_online_ab
COMMENT 'Online A/B per day and arm: UVC / UDT lift against the holdout with 95% CIs'
AS
SELECT o.ds, o.arm, o.policy_version,
       coalesce(r.algo, CASE WHEN o.policy_version LIKE 'fixed-%' THEN 'fixed' END) AS algo,
       o.users, h.users AS holdout_users, h.policy_version AS holdout_version,
       o.uvc, h.uvc AS holdout_uvc, o.uvc_lift, o.uvc_lift_low, o.uvc_lift_high,
       o.uvc_lift_low > 0 OR o.uvc_lift_high < 0 AS uvc_significant,
       o.udt, h.udt AS holdout_udt, o.udt_lift, o.udt_lift_low, o.udt_lift_high,
       o.udt_lift_low > 0 OR o.udt_lift_high < 0 AS udt_significant,
       o.regression
FROM {db}.online_metrics o
JOIN {db}.online_metrics h ON h.ds = o.ds AND h.arm = 'holdout'
LEFT JOIN {db}.policy_registry r ON r.model_version = o.policy_version
WHERE o.arm <> 'holdout';
