"""DagBag: the project's DAGs import cleanly and follow the house rules."""

from __future__ import annotations

import os

import pytest
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.sensors.python import PythonSensor

from core.settings import PROJECT_ROOT

DAG_IDS = ("mtf_daily", "mtf_simulate", "mtf_maintenance")


@pytest.fixture(scope="module")
def dagbag():
    from mtf.cli import airflow_env

    os.environ.update({k: v for k, v in airflow_env().items() if k.startswith("AIRFLOW")})
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(DAG_IDS) <= set(dagbag.dag_ids)


def test_every_dag_has_tags_owner_docs_retries_and_callback(dagbag):
    from mtf.airflow_tasks import on_task_failure

    for dag_id in DAG_IDS:
        dag = dagbag.dags[dag_id]
        assert dag.tags and "mtf-rl" in dag.tags, dag_id
        assert dag.doc_md and "Params" in dag.doc_md, dag_id
        assert {"profile", "ds"} <= set(dag.params), dag_id
        for task in dag.tasks:
            assert task.retries >= 2 and task.retry_delay.total_seconds() >= 30, task.task_id
            assert task.owner == "mtf-rl", (dag_id, task.task_id)
            assert task.doc_md, (dag_id, task.task_id)
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert on_task_failure in callbacks, (dag_id, task.task_id)


def test_daily_dag_order_groups_and_operators(dagbag):
    dag = dagbag.dags["mtf_daily"]
    order = ["wait_for_logs", "validate_logs", "build_enhanced_state", "train", "evaluate",
             "gate", "publish", "online_metrics", "report"]
    assert sorted(dag.task_ids) == sorted(order)
    for up, down in zip(order, order[1:]):
        assert dag.get_task(down).upstream_task_ids == {up}
    groups = {t.task_id: t.task_group.group_id for t in dag.tasks}
    assert groups["validate_logs"] == "ingest" and groups["train"] == "learn"
    assert groups["publish"] == "release" and groups["report"] == "observe"
    cli_tasks = {"train", "gate"}
    for t in dag.tasks:
        kind = type(t).__name__
        if t.task_id == "wait_for_logs":  # a sensor that pokes the markers, no Spark
            assert isinstance(t, PythonSensor) and t.mode == "reschedule"
            assert t.op_kwargs == {"ds": "{{ params.ds or ds }}", "profile": "{{ params.profile }}"}
            assert t.timeout == 12 * 3600 and t.poke_interval == 300
        elif t.task_id in cli_tasks:
            assert kind == "BashOperator", t.task_id
            if t.task_id == "gate":  # a refusal: skipped (not green), alert, publish runs
                assert "--reject-exit-code 99" in t.bash_command
                assert t.skip_on_exit_code == [99] and t.on_skipped_callback
                assert dag.get_task("publish").trigger_rule == "none_failed"
            assert '--ds "$MTF_RUN_DS" --profile "$MTF_RUN_PROFILE"' in t.bash_command
            assert t.env == {"MTF_RUN_DS": "{{ params.ds or ds }}",
                             "MTF_RUN_PROFILE": "{{ params.profile }}"} and t.append_env
        else:
            assert isinstance(t, SparkSubmitOperator), t.task_id
            assert t.application_args[:4] == ["--ds", "{{ params.ds or ds }}",
                                              "--profile", "{{ params.profile }}"]
            assert "delta-spark" in t.packages


def test_publication_deadline_under_the_scheduler(dagbag, monkeypatch):
    from airflow.sdk.definitions.deadline import DeadlineReference

    from mtf.airflow_tasks import publish_deadline
    from mtf.airflow_ui import ui_env

    assert not dagbag.dags["mtf_daily"].deadline  # `airflow dags test` (the demo): off
    monkeypatch.delenv("MTF_PUBLISH_DEADLINE_H", raising=False)
    assert publish_deadline() is None
    monkeypatch.setenv("MTF_PUBLISH_DEADLINE_H", ui_env(8123)["MTF_PUBLISH_DEADLINE_H"])
    alert = publish_deadline()  # what `make airflow`'s scheduler parses
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert alert.interval.total_seconds() == 30 * 3600  # 06:00 UTC the day after the data day
    assert alert.callback.path == "mtf.alerts.deadline_missed"


def test_params_resolve_day_and_profile(dagbag):
    """The templates give the param day when set, else the logical day; bad params fail."""
    import jinja2

    from mtf.airflow_tasks import DS, PROFILE, profiles

    env = jinja2.Environment()
    assert env.from_string(DS).render(params={"ds": None}, ds="2026-01-05") == "2026-01-05"
    assert env.from_string(DS).render(params={"ds": "2026-01-02"}, ds="2026-01-05") \
        == "2026-01-02"
    assert env.from_string(PROFILE).render(params={"profile": "test"}) == "test"
    params = dagbag.dags["mtf_daily"].params
    assert set(profiles()) >= {"demo", "test"}
    params.validate()  # the defaults are valid
    from airflow.sdk import Param
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        Param("not-a-profile", **{k: v for k, v in params.get_param("profile").schema.items()
                                  if k != "default"}).resolve()
    with pytest.raises(ParamValidationError):
        Param("2026/01/02", **{k: v for k, v in params.get_param("ds").schema.items()
                               if k != "default"}).resolve()


def test_maintenance_dag_passes_days(dagbag):
    task = dagbag.dags["mtf_maintenance"].get_task("optimize_vacuum")
    assert task.application.endswith("jobs/maintenance.py")
    assert task.application_args[-2:] == ["--days", "{{ params.days }}"]
    assert dagbag.dags["mtf_maintenance"].params["days"] == 7


def test_dag_files_have_no_heavy_imports():
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        for heavy in ("import torch", "import pyspark", "import pandas", "from pyspark"):
            assert heavy not in text, (path.name, heavy)


def test_profile_param_lists_only_pipeline_profiles(dagbag):
    from mtf.airflow_tasks import profiles

    enum = dagbag.dags["mtf_daily"].params.get_param("profile").schema["enum"]
    assert enum == profiles() and {"demo", "test", "paper"} <= set(enum)
    assert not any(p.startswith("experiment") or p == "tiny" for p in enum), enum


def test_spark_conf_and_sensor_settings_come_from_the_runs_profile(dagbag, monkeypatch):
    """The DAG file is parsed under one profile; a run with another profile gets that
    profile's Spark conf and landing-sensor settings when its tasks execute."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.providers.standard.sensors.python import PythonSensor

    import mtf.airflow_tasks as at
    from pipeline.config import load_config

    seen = {}
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, ctx: seen.update(
        conf=dict(self.conf)))
    monkeypatch.setattr(PythonSensor, "execute", lambda self, ctx: seen.update(
        poke=self.poke_interval, timeout=self.timeout))
    real = at.load_config
    monkeypatch.setattr(at, "load_config", lambda profile=None: real(profile, [
        "quality.landing_poke_s=7", "quality.landing_timeout_h=0.5"] if profile == "paper"
        else []))
    dag = dagbag.dags["mtf_daily"]
    build = dag.get_task("build_enhanced_state")
    build.profile = "paper"  # as rendered from {{ params.profile }} for a run with paper
    build.execute({})
    assert seen["conf"]["spark.sql.shuffle.partitions"] == str(
        load_config("paper").spark.shuffle_partitions) != str(
        load_config("test").spark.shuffle_partitions)
    sensor = dag.get_task("wait_for_logs")
    sensor.op_kwargs = {**sensor.op_kwargs, "profile": "paper"}
    sensor.execute({})
    assert seen["poke"] == 7.0 and seen["timeout"] == 1800.0


def test_assets_trace_the_landed_logs_to_the_published_weights(dagbag):
    """Inlets and outlets: every table a task reads is written by a task before it in the
    day (or is the registry, which the previous day wrote), and the graph leads from the
    landed raw logs to fusion_weights and the metric tables."""
    from mtf.assets import IO

    daily, simulate = dagbag.dags["mtf_daily"], dagbag.dags["mtf_simulate"]
    edges: dict[str, set[str]] = {}
    for dag in (simulate, daily):
        for t in dag.tasks:
            ins, outs = ([a.name for a in t.inlets], [a.name for a in t.outlets])
            assert (ins, outs) == ([a.name for a in IO[t.task_id][0]],
                                   [a.name for a in IO[t.task_id][1]]), t.task_id
            for a in ins:
                edges.setdefault(a, set()).add(t.task_id)
            for a in outs:
                edges.setdefault(t.task_id, set()).add(a)
    order = [t.task_id for t in simulate.tasks] + ["wait_for_logs", "validate_logs",
                                                   "build_enhanced_state", "train", "evaluate",
                                                   "gate", "publish", "online_metrics", "report"]
    written: set[str] = set()
    for task_id in order:
        reads = {a.name for a in IO[task_id][0]} - {"mtf.policy_registry"}
        assert reads <= written, (task_id, reads - written)
        written |= {a.name for a in IO[task_id][1]}
    reach, todo = set(), ["landing.raw_requests"]
    while todo:
        node = todo.pop()
        if node not in reach:
            reach.add(node)
            todo += edges.get(node, ())
    assert {"mtf.fusion_weights", "mtf.offline_metrics", "mtf.online_metrics",
            "mtf.policy_registry", "mtf.dq_metrics", "report"} <= reach
