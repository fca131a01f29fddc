# mtf-rl: the two commands are `make demo` and `make test` (both set up the environment).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench bench-etl bench-spark spark-start spark-stop airflow sql mlflow browser lint clean

install: $(STAMP)

# One environment for Spark jobs, trainer and Airflow (see docs/VERSIONS.md).
# petastorm goes in last with --no-deps: its metadata pins setuptools<70, which torch's
# wheels contradict, while it runs fine on the pinned set (tests/spark/test_petastorm_delta.py).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m pip install --no-deps petastorm==0.13.1
	$(PY) -m pip check || true
	$(PY) -c "import pyarrow, petastorm, torch, pyspark, delta, airflow; print('environment ok')"
	touch $(STAMP)

demo: install
	$(VENV)/bin/mtf demo --days 3

# Two xdist workers (tests/conftest.py: one module per unit, the e2e day once): the Spark
# and Airflow tests mostly wait on JVM start-up and Delta commits, so two overlap well.
test: install
	$(VENV)/bin/pytest -q -n 2 --dist loadgroup

test-fast: install
	$(VENV)/bin/pytest -q -m "not spark and not e2e"

bench: install
	$(PY) bench/bench_learner.py --out bench/results/learner.json

# A Spark step's fixed cost and one analyst query: spark-submit per step vs a Connect client
# of the Spark service (docs/OPERATIONS.md)
bench-spark: install
	$(PY) bench/bench_spark_service.py --out bench/results/spark_service.json

# The warehouse's long-lived Spark (Connect) service: jobs, `mtf sql` and Airflow's Spark
# steps attach to it while it runs
spark-start: install
	$(VENV)/bin/mtf spark start

spark-stop: install
	$(VENV)/bin/mtf spark stop

# Airflow standalone (UI, scheduler, DAG processor, triggerer) with the project's DAGs;
# prints the UI's URL and the generated admin login. Port: MTF_AIRFLOW_PORT (default 8080).
airflow: install
	$(PY) -m mtf.airflow_ui

# Interactive Spark SQL shell (pyspark's bin/spark-sql) on the catalog, views (re)created.
# One-off queries: $(VENV)/bin/mtf sql "SELECT * FROM mtf.v_policy_comparison"
sql: install
	$(PY) -m jobs.views --shell

# MLflow's UI on the tracking store (training runs, the registered policy and its `champion`
# alias): the local SQLite store under <local_dir>/_mlflow unless tracking.uri /
# MTF_MLFLOW_URI names a server. Listens on 127.0.0.1; port: MTF_MLFLOW_PORT (default 5000).
mlflow: install
	$(PY) -m mtf.cli mlflow

# Headless Chromium + chromedriver for tests/e2e/test_airflow_ui.py (Debian; needs root).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver)

# Spark vs DuckDB on one simulated day at 100k and 1M requests (long: minutes per size),
# with the candidate columns; --baseline: the job before the candidates, same files, same
# run, against DuckDB without them (docs/ETL.md).
bench-etl: install
	$(PY) bench/bench_etl.py --requests 100000 1000000 --baseline 7d26b0c \
	  --duckdb-plans lead lead+cand --work /tmp/mtf-bench-etl --out bench/results/etl.json

# The layer contract (import-linter, [tool.importlinter] in pyproject.toml), ruff everywhere,
# mypy on the ground floor and the RL core.
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check core sim model store pipeline jobs mtf dags tests bench
	$(VENV)/bin/mypy core model

clean:
	-test -x $(VENV)/bin/mtf && $(VENV)/bin/mtf spark stop
	rm -rf warehouse .airflow
