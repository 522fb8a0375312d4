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

# axe-core for the capture page's accessibility checks, from npm at the version in
# tests/axe/package-lock.json (node_modules is git-ignored). npm comes from Debian if missing.
AXE := tests/axe/node_modules/axe-core/axe.min.js
$(AXE): tests/axe/package.json tests/axe/package-lock.json
	command -v npm >/dev/null || { $(SUDO) apt-get update && $(SUDO) apt-get install -y npm; }
	cd tests/axe && npm ci --no-audit --no-fund
	touch $@

.PHONY: serve test lint browser
serve: $(VENV)/.installed-serve
	$(VENV)/bin/cdat serve

browser: /usr/bin/chromium $(AXE)

# Test processes side by side (pytest-xdist; each module's tests stay on one, so a module's
# costly fixtures are made once). At most 3: each process has its own Redis databases.
TEST_WORKERS ?= 2
test: $(VENV)/.installed-dev /usr/bin/chromium $(AXE)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadscope

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
