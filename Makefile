# mtf-rl: the two commands are `make demo` and `make test` (both set up the environment).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench airflow sql lint clean

install: $(STAMP)

# One environment for Spark jobs, trainer and Airflow (see README "Why these versions").
# petastorm goes in last with --no-deps: its metadata pins setuptools<70, which torch's
# wheels contradict, while it runs fine on the pinned set (tests/test_petastorm_delta.py).
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

test: install
	$(VENV)/bin/pytest -q

test-fast: install
	$(VENV)/bin/pytest -q -m "not spark and not e2e"

bench: install
	$(PY) bench/bench_learner.py --out bench/results/learner.json

airflow: install
	$(VENV)/bin/mtf airflow -- standalone

sql: install
	@echo 'usage: $(VENV)/bin/mtf sql "SELECT * FROM mtf.offline_metrics"'

lint: install
	$(VENV)/bin/ruff check mtf jobs model sim dags tests

clean:
	rm -rf warehouse .airflow
