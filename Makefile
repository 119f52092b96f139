# The two commands of the README. Both create .venv if absent and install from the project's own files.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run sweeps test install lint clean-results report-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): $(BIN)/python requirements.txt requirements-test.txt pyproject.toml
	$(BIN)/pip install -r requirements-test.txt
	$(BIN)/pip install --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## make run: the whole DAG on the embedded demo data (figures, tables and the HTML report in results/demo/)
run: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/snakemake --cores $(CORES) all
	OMP_WAIT_POLICY=PASSIVE $(BIN)/snakemake --cores $(CORES) all --report results/demo/report.html

## make sweeps: the sensitivity sweeps of the config (`sweeps:`) on top of the main run, which it completes first;
## and the sweeps report (results/demo/sweeps/report.html, section "6. Sensitivity sweeps")
sweeps: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/snakemake --cores $(CORES) sweeps
	OMP_WAIT_POLICY=PASSIVE $(BIN)/snakemake --cores $(CORES) sweeps --report results/demo/sweeps/report.html

## make report-check: the report in headless Chromium (apt-get install chromium): every section and item
## screenshotted into results/demo/report-check/, and a non-zero exit when an item cannot be viewed there
REPORT ?= results/demo/report.html
report-check: $(STAMP)
	$(BIN)/python -m bridging.reportcheck $(REPORT) --out $(basename $(REPORT))-check

## make test: the whole test suite, slow end-to-end tests included
test: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest --durations=15

## make lint: ruff (lint and format check) on the Python code, snakefmt on the Snakefiles, Snakemake's own lint
lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint
