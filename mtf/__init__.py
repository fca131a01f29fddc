"""mtf-rl's entry points (the top floor): the `mtf` command line (`mtf.cli`), the Airflow
operator factories and DAG constructor (`mtf.airflow_tasks`), the local Airflow UI
(`mtf.airflow_ui`) and the policy-quality experiment (`mtf.experiment`)."""

__version__ = "0.1.0"
