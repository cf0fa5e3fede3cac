# Targets are files where they can be: a rerun only redoes what is stale.
SHELL := /bin/bash
PYTHON_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= mini
export DRA_DATA_DIR ?= $(abspath ../shared/data)

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

test: $(VENV)/.installed
	$(PY) -m pytest tests -q
	DRA_PROFILE=smoke $(PY) -m pytest --nbval-lax notebooks -q -p no:cacheprovider

lab: $(VENV)/.installed
	$(VENV)/bin/jupyter lab notebooks

# Caches only: results in data/ and figures/ are never deleted here.
clean:
	rm -rf .pytest_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
