"""Analyst views (sql/views, store/views.py) on small explicit gold tables.

The views live in their own database so that rows other Spark tests write to `mtf` cannot
change what the views return here."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.spark
DB = "mtf_views_test"
CAND, CUR = "enhanced_rl-2031-01-02", "enhanced_rl-2031-01-01"
SHA = "a" * 64


def _registry_row(version: str, ds: str, status: str, reason: str | None = None) -> tuple:
    return (version, "enhanced_rl", ds, f"/art/{version}/actor.pt", SHA, "pair", "{}", 0,
            "abc", "{}", status, reason, ds)


@pytest.fixture(scope="module")
def views(spark):
    from store.views import ensure_views

    spark.sql(f"DROP DATABASE IF EXISTS {DB} CASCADE")
    spark.sql(f"CREATE DATABASE {DB}")
    for t in ("policy_registry", "offline_metrics", "online_metrics"):  # same schemas, empty
        spark.sql(f"CREATE TABLE {DB}.{t} USING DELTA AS SELECT * FROM mtf.{t} WHERE false")
    reg = [_registry_row(CUR, "2031-01-01", "published"),
           _registry_row(CAND, "2031-01-02", "published"),
           _registry_row("enhanced_rl-2031-01-03", "2031-01-03", "rejected", "ncis drop")]
    spark.createDataFrame(reg, spark.table(f"{DB}.policy_registry").schema) \
        .write.format("delta").mode("append").saveAsTable(f"{DB}.policy_registry")
    off = [("2031-01-02", CAND, "enhanced_rl", "candidate", "ncis/sigma_0.1", 12.0, 11.0, 13.0),
           ("2031-01-02", CAND, "enhanced_rl", "candidate", "mtf_gauc", 0.62, None, None),
           ("2031-01-02", CAND, "enhanced_rl", "candidate", "losses/critic", 3.5, None, None),
           ("2031-01-02", CUR, "enhanced_rl", "current", "ncis/sigma_0.1", 10.0, 9.0, 11.0),
           ("2031-01-02", CUR, "enhanced_rl", "current", "mtf_gauc", 0.60, None, None),
           ("2031-01-01", CUR, "enhanced_rl", "candidate", "mtf_gauc", 0.58, None, None),
           ("2031-01-01", "fixed-v0", "fixed", "current", "mtf_gauc", 0.50, None, None)]
    spark.createDataFrame(off, spark.table(f"{DB}.offline_metrics").schema) \
        .write.format("delta").mode("append").saveAsTable(f"{DB}.offline_metrics")
    none = (None,) * 7
    onl = [("2031-01-01", "current", "fixed-v0", 10, 12, 40, 3.0, 100.0, 40 / 12, 0.2, 5.0,
            *none),
           ("2031-01-02", "current", CUR, 10, 11, 44, 3.5, 120.0, 4.0, 0.1, 4.0,
            0.25, 0.1, 0.4, 0.2, 0.05, 0.35, False),
           ("2031-01-02", "holdout", "fixed-v0", 5, 5, 20, 2.8, 100.0, 4.0, 0.1, 6.0,
            *none)]
    spark.createDataFrame(onl, spark.table(f"{DB}.online_metrics").schema) \
        .write.format("delta").mode("append").saveAsTable(f"{DB}.online_metrics")
    created = ensure_views(spark, DB)
    return spark, created


def test_every_view_is_created_once(views):
    from store.views import ensure_views, view_names

    spark, created = views
    names = view_names()
    assert set(names) == {"v_latest_policy", "v_offline_metrics_daily", "v_online_metrics_daily",
                          "v_policy_comparison", "v_online_ab"}
    listed = {r["viewName"] for r in spark.sql(f"SHOW VIEWS IN {DB}").collect()}
    assert set(names) <= listed
    assert sorted(created) == sorted(names)
    assert ensure_views(spark, DB) == []  # unchanged SQL: nothing rewritten


def test_latest_policy_is_newest_published(views):
    spark, _ = views
    rows = spark.sql(f"SELECT * FROM {DB}.v_latest_policy").collect()
    assert len(rows) == 1
    assert rows[0]["model_version"] == CAND  # the newer rejected one does not count
    assert rows[0]["serves_from_ds"] == "2031-01-03"


def test_offline_metrics_daily_pivots_per_day_algo_role(views):
    spark, _ = views
    rows = {(r["ds"], r["role"]): r for r in spark.sql(
        f"SELECT * FROM {DB}.v_offline_metrics_daily").collect()}
    assert len(rows) == 4
    c = rows[("2031-01-02", "candidate")]
    assert (c["ncis_s01"], c["ncis_s01_ci_low"], c["ncis_s01_ci_high"]) == (12.0, 11.0, 13.0)
    assert c["mtf_gauc"] == pytest.approx(0.62) and c["critic_loss"] == 3.5
    assert c["sim_uvc"] is None and c["n_metrics"] == 3
    assert rows[("2031-01-01", "current")]["algo"] == "fixed"


def test_online_metrics_daily_joins_algo_and_change(views):
    spark, _ = views
    rows = spark.sql(f"SELECT * FROM {DB}.v_online_metrics_daily ORDER BY ds, arm").collect()
    assert [(r["ds"], r["arm"], r["policy_version"], r["algo"]) for r in rows] == [
        ("2031-01-01", "current", "fixed-v0", "fixed"),
        ("2031-01-02", "current", CUR, "enhanced_rl"),
        ("2031-01-02", "holdout", "fixed-v0", "fixed")]
    assert rows[0]["uvc_change"] is None
    assert rows[1]["uvc_change"] == pytest.approx(0.5)  # day over day within the arm
    assert rows[1]["udt_change"] == pytest.approx(20.0)
    assert rows[2]["uvc_change"] is None  # the holdout's first day
    assert rows[1]["policy_trained_ds"] == "2031-01-01"
    z = 1.959964
    assert (rows[1]["uvc_ci_low"], rows[1]["uvc_ci_high"]) == pytest.approx(
        (3.5 - z * 0.1, 3.5 + z * 0.1))
    assert rows[2]["udt_ci_low"] == pytest.approx(100.0 - z * 6.0)


def test_online_ab_is_each_arm_against_the_day_holdout(views):
    spark, _ = views
    rows = spark.sql(f"SELECT * FROM {DB}.v_online_ab").collect()
    assert len(rows) == 1  # day 1 had no holdout; the holdout is not compared with itself
    r = rows[0]
    assert (r["ds"], r["arm"], r["policy_version"], r["algo"]) == (
        "2031-01-02", "current", CUR, "enhanced_rl")
    assert (r["holdout_version"], r["holdout_users"], r["holdout_uvc"]) == ("fixed-v0", 5, 2.8)
    assert (r["uvc_lift"], r["uvc_lift_low"], r["uvc_lift_high"]) == (0.25, 0.1, 0.4)
    assert r["uvc_significant"] is True and r["udt_significant"] is True
    assert r["regression"] is False


def test_policy_comparison_deltas_and_decision(views):
    spark, _ = views
    rows = {(r["ds"], r["metric"]): r for r in spark.sql(
        f"SELECT * FROM {DB}.v_policy_comparison").collect()}
    # losses/critic has no 'current' row: not comparable, not listed
    assert set(rows) == {("2031-01-02", "ncis/sigma_0.1"), ("2031-01-02", "mtf_gauc"),
                         ("2031-01-01", "mtf_gauc")}
    n = rows[("2031-01-02", "ncis/sigma_0.1")]
    assert (n["candidate_version"], n["current_version"]) == (CAND, CUR)
    assert n["delta"] == pytest.approx(2.0) and n["rel_delta"] == pytest.approx(0.2)
    assert n["candidate_ci_above_current"] is True and n["decision"] == "published"
    g = rows[("2031-01-01", "mtf_gauc")]
    assert g["current_version"] == "fixed-v0" and g["delta"] == pytest.approx(0.08)
    assert g["candidate_ci_above_current"] is None


def test_sql_typo_is_one_line_not_a_trace(spark, capsys):
    from mtf.cli import main

    assert main(["sql", "SELEC count(*) FROM mtf.dq_metrics"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mtf sql: ") and "SELEC" in err[0], err
    assert main(["sql", "SELECT count(*) AS n FROM mtf.no_such_table"]) == 1
    assert "no_such_table" in capsys.readouterr().err


def test_sql_shell_runs_statements_and_survives_errors(views, spark, capsys):
    from jobs.views import sql_shell

    sql_shell(spark, DB, lines=["SELECT 1 AS x;", "SELECT nope FROM;", "SELECT count(*) AS n",
                                "FROM policy_registry;", "quit;", "SELECT 3 AS never;"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["x"] and out[2].split() == ["1"]
    assert out[3].startswith("error: [UNRESOLVED_COLUMN")
    n = spark.table(f"{DB}.policy_registry").count()
    assert out[4].split() == ["n"] and out[6].split() == [str(n)]  # in the shell's database
    assert len(out) == 7  # nothing after quit


def test_online_metrics_per_arm_with_se_and_lift(spark):
    """build_online_metrics on explicit rows, against hand-computed values: users u1, u2 in
    `current` (valid 2 and 0, watch 30 and 10), u3, u4 in `holdout` (valid 1 and 1)."""
    from jobs.online_metrics import build_online_metrics

    ds = "2031-02-01"
    req = spark.createDataFrame(
        [(ds, "r1", "s1", 1, "current", "p1"), (ds, "r2", "s1", 1, "current", "p1"),
         (ds, "r3", "s2", 2, "current", "p1"), (ds, "r4", "s3", 3, "holdout", "fixed-v0"),
         (ds, "r5", "s4", 4, "holdout", "fixed-v0")],
        "ds string, request_id string, session_id string, user_id bigint, arm string, "
        "policy_version string")
    fb = spark.createDataFrame(
        [("r1", 1, 20.0), ("r1", 0, 1.0), ("r2", 1, 9.0), ("r3", 0, 10.0), ("r4", 1, 15.0),
         ("r5", 1, 12.0)], "request_id string, valid int, watch_time_s double")
    df, summary_rows = build_online_metrics(req, fb, 0.02)
    rows = {r["arm"]: r for r in df.collect()}
    assert [r["arm"] for r in summary_rows] == ["current", "holdout"]
    cur, hold = rows["current"], rows["holdout"]
    assert (cur["users"], cur["sessions"], cur["requests"]) == (2, 2, 3)
    assert (cur["uvc"], cur["udt"]) == pytest.approx((1.0, 20.0))
    # per-user valid (2, 0): sd sqrt(2), se = sqrt(2) / sqrt(2) = 1; watch (30, 10): se 10
    assert (cur["uvc_se"], cur["udt_se"]) == pytest.approx((1.0, 10.0))
    assert (hold["uvc"], hold["uvc_se"], hold["udt"]) == pytest.approx((1.0, 0.0, 13.5))
    assert cur["uvc_lift"] == pytest.approx(0.0)
    assert (cur["uvc_lift_low"], cur["uvc_lift_high"]) == pytest.approx((-1.959964, 1.959964))
    assert cur["udt_lift"] == pytest.approx(20.0 / 13.5 - 1) and cur["regression"] is False
    assert hold["uvc_lift"] is None and hold["regression"] is False


def test_canary_is_the_newest_unpublished_candidate_after_the_current(views):
    from store.registry import FIXED_POLICY, canary_policy, serving_policy

    spark, _ = views
    current = serving_policy(spark, DB, "2031-01-04")
    assert current.model_version == CAND
    canary = canary_policy(spark, DB, "2031-01-04", current)
    assert canary is not None and canary.model_version == "enhanced_rl-2031-01-03"
    assert canary.artifact_sha256 == SHA and canary.level == "pair"
    # the rejected candidate is trained on 01-03: it cannot serve 01-03 itself
    assert canary_policy(spark, DB, "2031-01-03", serving_policy(spark, DB, "2031-01-03")) is None
    # against the fixed weights, any unpublished candidate before the day counts; a failed
    # training (rejected, without an actor) is never a canary
    failed = list(_registry_row("enhanced_rl-2031-01-05", "2031-01-05", "rejected",
                                "training failed: NonFiniteError"))
    failed[3] = ""  # artifact_uri: none
    spark.createDataFrame([tuple(failed)], spark.table(f"{DB}.policy_registry").schema) \
        .write.format("delta").mode("append").saveAsTable(f"{DB}.policy_registry")
    assert canary_policy(spark, DB, "2031-01-09", FIXED_POLICY).model_version == \
        "enhanced_rl-2031-01-03"
