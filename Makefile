# The README's two commands are `make run` and `make test`; everything else is optional.
# Every target creates .venv on first use, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench sandbox clean sam-checks infra

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: start the bridge locally on embedded defaults (no cloud account, no Docker)
run: $(STAMP)
	$(BIN)/humanos-bridge local

## test: lint, type-check, SAM checks (cfn-lint, sam validate, sam build) and every test suite (what CI runs)
test: lint sam-checks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## bench: run the benchmarks; prints figures and writes bench/results.json
bench: $(STAMP)
	$(BIN)/python -m bench

## sandbox: run the Humanos sandbox alone
sandbox: $(STAMP)
	$(BIN)/humanos-bridge sandbox

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis

## sam-checks: cfn-lint, sam validate --lint, sam build (SAM CLI in its own .sam-venv)
sam-checks: $(STAMP)
	bash .ci/sam-checks

## infra: the SAM checks and the template tests only
infra: sam-checks
	$(BIN)/python -m pytest tests/infrastructure -q
