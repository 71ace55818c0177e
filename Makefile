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
# Quarto 1.7.34 from the kit beside the checkout, installed by `make quarto` (CI does).
# Its bin/ is on PATH for every target below: with it the report renders with Quarto and
# the Quarto tests run; without it the fallback renders and those tests are skipped.
QUARTO_KIT ?= ../shared/tools/quarto
QUARTO_DIR := .tools/quarto
TOOLS  := $(CURDIR)/$(BIN):$(CURDIR)/$(QUARTO_DIR)/bin

.PHONY: install quarto run test lint bench smoke clean slurm-up slurm-down slurm-test

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[workflow,test]"
	touch $@

## quarto: install Quarto 1.7.34 from QUARTO_KIT into .tools/quarto (about 10 s; again: no-op)
quarto: install
	PYTHON="$(CURDIR)/$(BIN)/python" "$(QUARTO_KIT)/install-quarto" "$(CURDIR)/$(QUARTO_DIR)"

## run: the grid of CONFIG (default config/config.yaml) and the report (results/report/report.html)
# check-config first: Snakemake reads --configfile itself and names no line on a YAML error.
run: install
	$(BIN)/rnngrad check-config $(CONFIG)
	PATH="$(TOOLS):$$PATH" $(BIN)/snakemake --cores $(CORES) $(PROFILE) --configfile $(CONFIG)

## smoke: the tiny grid of config/smoke.yaml, report included
smoke: install
	$(BIN)/rnngrad check-config config/smoke.yaml
	PATH="$(TOOLS):$$PATH" $(BIN)/snakemake --cores $(CORES) $(PROFILE) --configfile config/smoke.yaml

## lint: ruff, snakefmt and snakemake --lint
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests benchmarks workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(TOOLS):$$PATH" $(BIN)/snakemake --lint --cores 1 $(PROFILE)

## test: lint, then every test (the smoke DAG included; the Quarto ones after `make quarto`)
test: lint
	PATH="$(TOOLS):$$PATH" $(BIN)/python -m pytest

## bench: the benchmark suite (results/bench/bench.json)
bench: install
	PATH="$(TOOLS):$$PATH" $(BIN)/python -m benchmarks

## slurm-up / slurm-down: a one-node Slurm on this machine (root, Debian/Ubuntu), to try the Slurm path
slurm-up:
	scripts/slurm/start-local-slurm.sh
slurm-down:
	scripts/slurm/stop-local-slurm.sh

## slurm-test: only the Slurm tests (needs a cluster that answers)
slurm-test: install
	PATH="$(TOOLS):$$PATH" $(BIN)/python -m pytest -m slurm

clean:
	rm -rf results/* .snakemake
	touch results/.gitkeep
