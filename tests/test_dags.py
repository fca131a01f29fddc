"""DagBag: the project's DAGs import cleanly and follow the house rules."""

from __future__ import annotations

import os

import pytest

from mtf.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def dagbag():
    from mtf.cli import airflow_env

    os.environ.update({k: v for k, v in airflow_env().items() if k.startswith("AIRFLOW")})
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"mtf_daily", "mtf_simulate"} <= set(dagbag.dag_ids)


def test_every_dag_has_tags_owner_docs_and_retries(dagbag):
    for dag_id in ("mtf_daily", "mtf_simulate"):
        dag = dagbag.dags[dag_id]
        assert dag.tags and "mtf-rl" in dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.retries >= 2, (dag_id, task.task_id)
            assert task.owner == "mtf-rl", (dag_id, task.task_id)


def test_daily_dag_order_and_operators(dagbag):
    dag = dagbag.dags["mtf_daily"]
    order = ["wait_for_logs", "build_enhanced_state", "train", "evaluate", "gate", "publish",
             "online_metrics"]
    for up, down in zip(order, order[1:]):
        assert dag.get_task(down).upstream_task_ids == {up}
    spark_tasks = {"wait_for_logs", "build_enhanced_state", "evaluate", "publish",
                   "online_metrics"}
    for t in dag.tasks:
        kind = type(t).__name__
        if t.task_id in spark_tasks:
            assert kind == "SparkSubmitOperator", t.task_id
            assert t.application_args == ["--ds", "{{ ds }}"]
            assert "delta-spark" in t.packages
        else:
            assert kind == "BashOperator" and "--ds {{ ds }}" in t.bash_command


def test_dag_files_have_no_heavy_imports():
    for path in (PROJECT_ROOT / "dags").glob("*.py"):
        text = path.read_text()
        for heavy in ("import torch", "import pyspark", "import pandas", "from pyspark"):
            assert heavy not in text, (path.name, heavy)
