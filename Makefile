# Everything here works on a fresh clone: the first target that needs .venv creates it.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed
GROUPS := --group test --group docs --group lint --group typing --group pkg --group tox
# Resolved before PATH changes below: the interpreter .venv is made from.
BOOTSTRAP_PYTHON := $(shell command -v python3)

# tox needs python3.10 ... python3.13. pyenv's shims only run the versions pyenv selects (uv and
# tox fail on the others), so link each installed interpreter into one directory put first on PATH.
# Not directly under .venv: Python would find .venv/pyvenv.cfg next door and think it is a venv.
PYENV_ROOT ?= $(HOME)/.pyenv
PYTHONS_DIR := $(CURDIR)/$(VENV)/pythons/bin
export PATH := $(PYTHONS_DIR):$(PATH)

TEST_ENV := env -u DATABASE_URL -u TEST_CHANNEL_LAYER -u REDIS_URL -u OPENAI_API_KEY -u OPENAI_BASE_URL
# Overridable, so that a second checkout on a shared machine can use its own test database.
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
TOX_CI_ENVS := py310-django52,py313-django61,docs,pkg
DEMO_PORT ?= 8000

.PHONY: help venv pythons demo test test-sqlite test-postgres lint format docs mypy tox tox-ci bench clean

help:
	@echo "make demo     example marketplace on http://127.0.0.1:8000 (accounts in README.md)"
	@echo "make test     the suite on SQLite + in-memory layer, then on PostgreSQL + Redis"
	@echo "make lint     ruff check and format --check"
	@echo "make docs     Sphinx with -W into docs/_build/html"
	@echo "make mypy     type check the package"
	@echo "make tox-ci   the tox envs CI runs: $(TOX_CI_ENVS)"
	@echo "make tox      the whole tox matrix"
	@echo "make bench    benchmarks/run.py"

venv: $(STAMP) pythons

# Re-runs only when pyproject.toml changes; otherwise the stamp makes this a no-op.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv
	$(UV) pip install --quiet --python $(PY) -e . $(GROUPS)
	@touch $@

pythons:
	@mkdir -p $(PYTHONS_DIR)
	@for dir in $(PYENV_ROOT)/versions/3.1[0-9].*/bin; do \
		for exe in $$dir/python3.1[0-9]; do \
			[ -x "$$exe" ] && ln -sfn "$$exe" $(PYTHONS_DIR)/$$(basename $$exe); \
		done; \
	done; true

demo: venv
	$(PY) example_project/manage.py migrate --noinput
	$(PY) example_project/manage.py load_demo
	@echo "Sophie's demo: http://127.0.0.1:$(DEMO_PORT) (cliente/cliente123, prestador/prestador123, admin/admin123)"
	$(VENV)/bin/uvicorn --app-dir example_project example_project.asgi:application \
		--host 127.0.0.1 --port $(DEMO_PORT) --ws-per-message-deflate false --timeout-graceful-shutdown 5

# Both runs always run; the target fails if either failed (pytest's "no tests" exit 5 included).
test: venv
	@rc=0; \
	$(MAKE) --no-print-directory test-sqlite || rc=1; \
	$(MAKE) --no-print-directory test-postgres || rc=1; \
	exit $$rc

# The fault suites always run their own servers on PostgreSQL and Redis: once, in the second run.
test-sqlite: venv
	$(TEST_ENV) $(PY) -m pytest -q --ignore=tests/faults $(PYTEST_ARGS)

test-postgres: venv
	$(TEST_ENV) DATABASE_URL=$(PG_URL) TEST_CHANNEL_LAYER=redis \
		$(PY) -m pytest -q -m "not browser" --ignore=tests/test_packaging.py $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check src tests example_project benchmarks docs
	$(VENV)/bin/ruff format --check src tests example_project benchmarks docs

format: venv
	$(VENV)/bin/ruff check --fix src tests example_project benchmarks docs
	$(VENV)/bin/ruff format src tests example_project benchmarks docs

docs: venv
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

mypy: venv
	PYTHONPATH=example_project $(VENV)/bin/mypy src/sophie_chat

tox: venv
	$(VENV)/bin/tox run

tox-ci: venv
	$(VENV)/bin/tox run -e $(TOX_CI_ENVS)

# About 10 minutes; starts its own servers on loopback ports (PostgreSQL and Redis must run).
bench: venv
	$(UV) pip install --quiet --python $(PY) --group bench
	$(PY) benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf build dist docs/_build .tox src/*.egg-info
