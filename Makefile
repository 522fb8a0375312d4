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

# Headless Chromium for the adjuster-workspace browser tests (Debian's package; Playwright
# drives it, `playwright install` is never run). Needs root or sudo on a fresh machine.
SUDO ?= $(shell [ "$$(id -u)" = 0 ] || echo sudo)
/usr/bin/chromium:
	$(SUDO) apt-get update
	$(SUDO) apt-get install -y chromium

.PHONY: serve test lint browser
serve: $(VENV)/.installed-serve
	$(VENV)/bin/cdat serve

browser: /usr/bin/chromium

test: $(VENV)/.installed-dev /usr/bin/chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
