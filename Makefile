# Two entry points for a fresh machine: `make serve` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
export CDAT_DATA_ROOT ?= $(abspath ../shared/datasets)

$(VENV)/.installed-serve: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[train,dev]'
	touch $(VENV)/.installed-serve $@

.PHONY: serve test lint
serve: $(VENV)/.installed-serve
	$(VENV)/bin/cdat serve

test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
