# `make run` and `make test` work on a fresh machine that has only Python 3.11:
# they create .venv, install rnngrad with everything it needs, then run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The torch build to install first. 2.13.0 satisfies the package's range; CI pins it
# (a CPU build there). Override, e.g. TORCH="torch==2.13.0 --index-url ...", for CUDA.
TORCH  ?= torch==2.13.0
CORES  ?= $(shell nproc 2>/dev/null || echo 2)
CONFIG ?= config/config.yaml
STAMP  := $(VENV)/.installed-stamp
PROFILE := --workflow-profile workflow/profiles/default

.PHONY: install run test lint bench smoke clean slurm-up slurm-down slurm-test

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[workflow,test]"
	touch $@

## run: the grid of CONFIG (default config/config.yaml) and the report (results/report/report.html)
# check-config first: Snakemake reads --configfile itself and names no line on a YAML error.
run: install
	$(BIN)/rnngrad check-config $(CONFIG)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) $(PROFILE) --configfile $(CONFIG)

## smoke: the tiny grid of config/smoke.yaml, report included
smoke: install
	$(BIN)/rnngrad check-config config/smoke.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) $(PROFILE) --configfile config/smoke.yaml

## lint: ruff, snakefmt and snakemake --lint
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests benchmarks workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint --cores 1 $(PROFILE)

## test: lint, then every test (the end-to-end DAG on config/smoke.yaml included)
test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

## bench: the benchmark suite (results/bench/bench.json)
bench: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks

## slurm-up / slurm-down: a one-node Slurm on this machine (root, Debian/Ubuntu), to try the Slurm path
slurm-up:
	scripts/slurm/start-local-slurm.sh
slurm-down:
	scripts/slurm/stop-local-slurm.sh

## slurm-test: only the Slurm tests (needs a cluster that answers)
slurm-test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -m slurm

clean:
	rm -rf results/* .snakemake
	touch results/.gitkeep
