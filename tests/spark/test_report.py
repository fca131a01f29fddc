"""The nightly report (jobs/report.py): files produced, PNGs non-empty, histograms right."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.artifact import Artifact

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DS = "2033-05-02"
CAND, CUR = f"enhanced_rl-{DS}", "enhanced_rl-2033-05-01"


def _png_ok(path) -> bool:
    data = path.read_bytes()
    return len(data) > 2000 and data.startswith(PNG_MAGIC)


def test_render_report_without_data_says_so(tmp_path):
    from jobs.report import ReportData, render_report

    empty = pd.DataFrame()
    path = render_report(ReportData(DS, pd.DataFrame(columns=["step"]), empty, empty, empty,
                                    empty), tmp_path / "r")
    page = path.read_text()
    assert path.name == "report.html" and DS in page
    assert "no train_metrics.jsonl for this day" in page and "no fusion weights" in page
    assert "No candidate registered for " + DS in page and "None" not in page
    assert not list((tmp_path / "r").glob("*.png"))


@pytest.mark.spark
def test_report_job_on_small_tables(spark, cfg):
    from core import schema as S
    from jobs import report
    from pipeline.provenance import artifact_dir
    from store.tables import write_partition

    db = cfg.storage.database
    art = artifact_dir(cfg, DS)
    art.mkdir(parents=True, exist_ok=True)
    Artifact(art).train_metrics.write_text("\n".join(
        json.dumps({"step": s, "losses/critic": 10.0 / s, "losses/actor": 5.0 - s / 100,
                    "q/mean": 0.5 + s / 1000}) for s in range(10, 210, 10)))
    off = [(DS, m, "enhanced_rl", role, metric, v, lo, hi)
           for m, role, base in ((CAND, "candidate", 1.0), (CUR, "current", 0.9))
           for metric, v, lo, hi in (("ncis/sigma_0.1", 20 * base, 18 * base, 22 * base),
                                     ("mtf_gauc", 0.6 * base, None, None),
                                     ("sim/uvc", 25 * base, None, None))]
    write_partition(spark.createDataFrame(off, spark.table(f"{db}.offline_metrics").schema),
                    db, "offline_metrics", DS)
    onl = [(DS, "current", CUR, 10, 12, 40, 3.0, 100.0, 40 / 12, 0.1, 5.0,
            -0.25, -0.4, -0.1, 0.0, -0.2, 0.2, True),
           (DS, "holdout", "fixed-v0", 5, 6, 20, 4.0, 100.0, 20 / 6, 0.2, 6.0, *(None,) * 7)]
    write_partition(spark.createDataFrame(onl, spark.table(f"{db}.online_metrics").schema),
                    db, "online_metrics", DS)
    # 3 pairs + 1 per-user fallback row (item_id -1, not in the histograms)
    weights = [(DS, CAND, 1, item, [0.0] * 10, *([p] * 5), *([b] * 5))
               for item, p, b in ((10, 0.5, 0.02), (11, 1.0, 0.26), (12, 2.0, 0.51),
                                  (-1, 1.0, 0.26))]
    write_partition(spark.createDataFrame(weights, spark.table(f"{db}.fusion_weights").schema),
                    db, "fusion_weights", DS)

    reg = spark.createDataFrame([(CAND, "enhanced_rl", DS, "/a/actor.pt", "c" * 64, "pair",
                                  json.dumps({"profile": "test"}), 7, "abc123",
                                  json.dumps({"mtf.enhanced_state": 4}), "rejected",
                                  "mtf_gauc regressed: 0.5 < 0.6 - 0.02", DS)],
                                spark.table(f"{db}.policy_registry").schema)
    from store.registry import upsert_registry

    upsert_registry(spark, db, reg.first().asDict())
    dq = [(DS, "r", t, rule, sev, n, f) for t, rule, sev, n, f in (
        ("raw_requests", "_all", "summary", 100, 3), ("raw_requests", "bad_ids", "soft", 100, 2),
        ("raw_requests", "session_cascade", "cascade", 100, 1),
        ("raw_requests", "null_ts", "soft", 100, 0), ("raw_items", "_all", "summary", 50, 0))]
    write_partition(spark.createDataFrame(dq, spark.table(f"{db}.dq_metrics").schema),
                    db, "dq_metrics", DS)

    path = report.run(spark, cfg, DS)
    assert path == report.reports_dir(cfg, DS) / "report.html"
    page = path.read_text()
    # the headline: the decision and its reason, first
    assert "<b>REJECTED</b>: " + CAND in page and "mtf_gauc regressed: 0.5 &lt; 0.6" in page
    assert page.index("REJECTED") < page.index("Candidate vs current")
    dq_table = report.dq_summary(pd.DataFrame(dq, columns=["ds", "run_id", "table_name", "rule",
                                                            "severity", "rows_checked",
                                                            "rows_failed"]))
    assert dq_table.to_dict("records") == [
        {"table": "raw_items", "landed": 50, "accepted": 50, "quarantined": 0,
         "rules that fired": "-"},
        {"table": "raw_requests", "landed": 100, "accepted": 97, "quarantined": 3,
         "rules that fired": "bad_ids 2, session_cascade 1"}]
    assert "bad_ids 2, session_cascade 1" in page  # the data-quality section
    assert "abc123" in page and "c" * 64 in page and "mtf.enhanced_state" in page  # provenance
    # the day's A/B against the holdout: lift with its CI, the regression called out first
    assert "<b>ONLINE REGRESSION</b> in arm(s) current" in page
    assert "-25.00% [-40.00%, -10.00%]" in page and "+0.00% [-20.00%, +20.00%]" in page
    assert page.index("ONLINE REGRESSION") < page.index("Candidate vs current")
    index = (path.parent.parent / "index.html").read_text()
    assert f"{DS}/report.html" in index and "rejected" in index and CAND in index
    for png in ("train_curves.png", "offline_history.png", "weights.png", "online.png"):
        assert f'src="{png}"' in page
        assert _png_ok(path.parent / png), png
    assert CAND in page and CUR in page  # the comparison table

    hist = spark.sql(report.weight_histograms_sql(db, DS)).toPandas()
    assert set(hist["weight"]) == {f"{k}_{o}" for k in ("power", "bias") for o in S.OBJECTIVES}
    pw = hist[hist["weight"] == "power_valid"].set_index("bin")["n"].to_dict()
    # power 0.5 -> bin 10 of 40 over [0, 2]; 1.0 -> bin 20; 2.0 (upper edge) -> last bin
    assert pw == {10: 1, 20: 1, report.BINS - 1: 1}
    bias = hist[hist["weight"] == f"bias_{S.OBJECTIVES[-1]}"]
    assert int(bias["n"].sum()) == 3 and bias["bin"].min() == 0
