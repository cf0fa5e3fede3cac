# Targets are files where they can be: a rerun only redoes what is stale.
SHELL := /bin/bash
PYTHON_SYS ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= mini
# A local copy of the external data, when one sits beside the checkout (as in CI); else loaders use cache/download.
export DRA_DATA_DIR ?= $(wildcard $(abspath ../shared/data))
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: help env test reproduce lab sync-notebooks clean

help:  ## list the targets
	@echo "make env             build .venv (pinned versions; torch CPU build first)"
	@echo "make test            unit tests + every notebook with profile=smoke under nbval (what CI runs)"
	@echo "make reproduce       every notebook at PROFILE=$(PROFILE) into notebooks/executed/ (reruns only what is stale)"
	@echo "make lab             JupyterLab on notebooks/ (notebooks run at the profile in their parameters cell: mini)"
	@echo "make sync-notebooks  bring notebooks/*.ipynb and their paired notebooks/py/*.py up to date (jupytext)"
	@echo "make clean           remove caches (never results, figures or trained models)"

# The venv is a file target: its stamp is newer than the files that define it.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON_SYS) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[notebooks,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

env: $(VENV)/.installed

# Unit tests (results and figures to a temporary folder; tests/conftest.py moves runs/ to one and fails the session
# if a test wrote into the repository's runs/), then every notebook at the smoke profile under nbval,
# run as a user runs them (no redirected folders): smoke outputs go to ignored subfolders (figures/smoke/,
# data/smoke/), and the check after it fails if a notebook changed any tracked or unignored file. No test
# touches the network. The notebooks' parameters cell says profile = "mini"; papermill --prepare-only writes
# each with profile = "smoke" injected (nothing runs, the nbval reference outputs stay) into .cache/nbval/,
# and nbval runs those copies.
SMOKE_NOTEBOOKS := $(patsubst notebooks/%,.cache/nbval/%,$(NOTEBOOKS))

test: $(VENV)/.installed
	@tmp=$$(mktemp -d) && HF_HUB_OFFLINE=1 DRA_FIGURES_DIR=$$tmp/figures DRA_RESULTS_DIR=$$tmp/data $(PY) -m pytest tests -q
	@rm -rf .cache/nbval && mkdir -p .cache/nbval && for notebook in $(NOTEBOOKS); do \
	$(VENV)/bin/papermill --log-level WARNING --prepare-only -p profile smoke $$notebook .cache/nbval/$$(basename $$notebook) \
	|| exit 1; done
	@before=$$(git status --porcelain 2>/dev/null; git diff 2>/dev/null | sha1sum) && \
	HF_HUB_OFFLINE=1 $(PY) -m pytest --nbval-lax $(SMOKE_NOTEBOOKS) -q -p no:cacheprovider && \
	after=$$(git status --porcelain 2>/dev/null; git diff 2>/dev/null | sha1sum) && \
	if [ "$$before" != "$$after" ]; then echo "notebooks at the smoke profile changed the working tree:"; \
	git status --short; exit 1; fi

# Every numbered notebook, executed with papermill at $(PROFILE) into notebooks/executed/. Targets are those
# files: a notebook reruns only when it or the library changed, and the heavy steps inside (base policy,
# training runs, embeddings, evaluations) are cached by configuration, so a rerun redoes only what is stale.
EXECUTED := $(patsubst notebooks/%.ipynb,notebooks/executed/%_$(PROFILE).ipynb,$(NOTEBOOKS))
LIBRARY := $(wildcard dra/*.py) $(wildcard recipes/*/*.yaml) $(wildcard data/*.csv)

reproduce: $(VENV)/.installed
	@mkdir -p .cache && rm -f .cache/reproduce_$(PROFILE).log
	@$(MAKE) --no-print-directory $(EXECUTED)
	@$(PY) scripts/reproduce_summary.py $(PROFILE)

notebooks/executed/%_$(PROFILE).ipynb: notebooks/%.ipynb $(LIBRARY) | $(VENV)/.installed
	$(PY) scripts/run_notebook.py $< $@ $(PROFILE)

# The tables read the training results.
notebooks/executed/04_benchmark_tables_$(PROFILE).ipynb: notebooks/executed/03_dra_training_$(PROFILE).ipynb

# Notebook 03 once more on the long-horizon grid (docs/preregistration_mini_long.md; the notebook's grid parameter):
# its tables, figures and summary carry "_long", so it never overwrites the main grid's.
LONG_GRID := notebooks/executed/03_dra_training_long_$(PROFILE).ipynb
EXECUTED += $(LONG_GRID)
$(LONG_GRID): notebooks/03_dra_training.ipynb $(LIBRARY) | $(VENV)/.installed
	$(PY) scripts/run_notebook.py $< $@ $(PROFILE) grid=long

# The notebooks run at the profile in their parameters cell (mini, the library's default); the message says how
# to change it. Progress bars are widgets (ipywidgets); saving a notebook also updates its notebooks/py/ pair.
lab: $(VENV)/.installed
	@echo "Notebooks run at profile = \"mini\" (their parameters cell; notebook 01 takes about 5 min on 2 cores, plus"
	@echo "about 30 min to train the mini base policy once). For a 30-second look, set profile = \"smoke\" in that cell."
	$(VENV)/bin/jupyter lab notebooks

sync-notebooks: $(VENV)/.installed
	$(VENV)/bin/jupytext --sync $(NOTEBOOKS)

# Caches only (embeddings, downloads, logs, build files): results in data/ and figures/, executed notebooks and
# trained models in runs/ are never deleted here.
clean:
	rm -rf .cache .pytest_cache build *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print -exec rm -rf {} +
	find notebooks -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
