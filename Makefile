# Two commands do all the set-up on a fresh machine: `make repro` and `make test`.
VENV   ?= .venv
PYTHON ?= $(shell command -v python3.11 || command -v python3)
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
QUIET  := 2>&1 | { grep -v "is ignored" || true; }
SHELL  := /bin/bash
.SHELLFLAGS := -o pipefail -ec

.PHONY: install repro test test-fast bench report docs-images mlflow-ui plots clean-venv

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt $(QUIET)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . $(QUIET)
	$(BIN)/python -c "import torch, torchvision, cv2, scrapy, dvc, mlflow, vl_convert, carremoval, crawlers"
	touch $@

# `dvc exp run --temp` works in .dvc/tmp/exps/standalone/<id>/ and queued experiments in .dvc/tmp/exps/<id>/,
# where the stages' ../shared would not resolve: link it there.
EXP_SHARED := .dvc/tmp/exps/standalone/shared .dvc/tmp/exps/shared
$(EXP_SHARED):
	mkdir -p $(@D)
	ln -sfn $(abspath ../shared) $@

# The page template of `dvc plots show` (.dvc/config plots.html_template) with Vega inlined: plots draw offline.
PLOTS_PAGE := .dvc/plots/page.html
$(PLOTS_PAGE): .dvc/plots/page.in.html src/carremoval/plots_page.py $(STAMP)
	$(BIN)/python -m carremoval.plots_page --template $< --out $@

install: $(STAMP) $(EXP_SHARED) $(PLOTS_PAGE)

## Run the whole pipeline on the default parameters (the site snapshot, CPU-sized).
repro: $(STAMP) $(EXP_SHARED) $(PLOTS_PAGE)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

## Run the whole test suite, slow tests included.
test: $(STAMP)
	$(BIN)/python -m pytest

## Only the fast tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

## Speed and memory benchmarks with their baselines; writes metrics/bench.json.
bench: $(STAMP)
	$(BIN)/python -m carremoval.bench --out metrics/bench.json

## The results tables of README.md and docs/*.md, rendered from metrics/*.json.
report: $(STAMP)
	$(BIN)/python -m carremoval.report

## The pictures of docs/img/ (needs models/generator.pt from `make repro`).
docs-images: $(STAMP)
	$(BIN)/python -m carremoval.report images

## MLflow UI on 127.0.0.1:5000 over the repo's tracking store; prints the address of the training runs first.
MLFLOW_HOST ?= 127.0.0.1
MLFLOW_PORT ?= 5000
mlflow-ui: $(STAMP)
	@echo "MLflow UI, training runs: $$($(BIN)/python -m carremoval.tracking url --root $(CURDIR) --host $(MLFLOW_HOST) --port $(MLFLOW_PORT))"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host $(MLFLOW_HOST) --port $(MLFLOW_PORT)

## The plots of dvc.yaml (loss curves, val metrics per evaluation) into dvc_plots/index.html, drawn offline.
plots: $(STAMP) $(PLOTS_PAGE)
	$(BIN)/dvc plots show

clean-venv:
	rm -rf $(VENV)
