# Targets are files where they can be: a rerun only redoes what is stale.
SHELL := /bin/bash
PYTHON_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= mini
# A local copy of the external data, when one sits beside the checkout (as in CI); else loaders use cache/download.
export DRA_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: env test test-unit test-notebooks reproduce lab clean

# The venv is a file target: its stamp is newer than the files that define it.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

env: $(VENV)/.installed

# Unit tests, then every notebook at the smoke profile under nbval. Figures and results go to a temporary
# folder, so the tests never rewrite tracked files; no test touches the network.
test: $(VENV)/.installed
	@tmp=$$(mktemp -d) && export HF_HUB_OFFLINE=1 DRA_FIGURES_DIR=$$tmp/figures DRA_RESULTS_DIR=$$tmp/data && \
	$(PY) -m pytest tests -q && \
	DRA_PROFILE=smoke $(PY) -m pytest --nbval-lax $(NOTEBOOKS) -q -p no:cacheprovider

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

# Caches only: results in data/ and figures/ are never deleted here.
clean:
	rm -rf .pytest_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
