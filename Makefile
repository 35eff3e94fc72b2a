# The README's two commands are `make run` and `make test`; everything else is optional.
# Every target creates .venv on first use, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint unit bench sandbox clean sam-checks checkov infra test-lambda-python model

$(STAMP): pyproject.toml
	@echo "installing the development environment into $(VENV) (first run, or pyproject.toml changed; about 30 s)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: start the bridge locally on embedded defaults (no cloud account, no Docker);
## options through ARGS (make run ARGS="--port 0 --mapping presets/stripe-checkout.json") or PORT (make run PORT=0)
run: $(STAMP)
	$(BIN)/humanos-bridge local$(if $(PORT), --port $(PORT))$(if $(ARGS), $(ARGS))

## test: lint, type-check, SAM checks (cfn-lint, sam validate, sam build), the checkov security scan, every
## test suite, and the unit and integration suites again on Python 3.13 (the Lambda runtime) (what CI runs)
test: lint sam-checks checkov
	$(BIN)/python -m pytest
	$(MAKE) test-lambda-python

# Python 3.13 from pyenv (the Lambda runtime's version), in its own venv.
VENV313 := .venv313
$(VENV313)/.installed: pyproject.toml
	test -x $(VENV313)/bin/python || PYENV_VERSION=3.13.0 $$(PYENV_VERSION=3.13.0 pyenv which python3.13) -m venv $(VENV313)
	$(VENV313)/bin/python -m pip install --quiet --upgrade pip
	$(VENV313)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

## test-lambda-python: unit and integration suites on Python 3.13 (the 2,000-event fault test runs once, on 3.11)
test-lambda-python: $(VENV313)/.installed
	$(VENV313)/bin/python -m pytest -q tests/unit tests/integration \
		--deselect tests/integration/test_dispatcher_faults.py::test_thirty_percent_faults_still_give_exactly_one_request_per_event

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

## model: the exactly-once state machine, a long run (CI runs a short one inside `make test`)
MODEL_EXAMPLES ?= 200
MODEL_STEPS ?= 40
model: $(STAMP)
	EXACTLY_ONCE_MODEL_EXAMPLES=$(MODEL_EXAMPLES) EXACTLY_ONCE_MODEL_STEPS=$(MODEL_STEPS) \
		$(BIN)/python -m pytest -q -s -p no:cacheprovider tests/integration/test_exactly_once_model.py

## bench: run the benchmarks; prints figures and writes bench/results.json
bench: $(STAMP)
	$(BIN)/python -m bench

## sandbox: run the Humanos sandbox alone (options through ARGS or PORT, as for run)
sandbox: $(STAMP)
	$(BIN)/humanos-bridge sandbox$(if $(PORT), --port $(PORT))$(if $(ARGS), $(ARGS))

clean:
	rm -rf $(VENV) $(VENV313) .aws-sam .pytest_cache .ruff_cache .mypy_cache .hypothesis

## sam-checks: cfn-lint, sam validate --lint, sam build (SAM CLI in its own .sam-venv)
sam-checks: $(STAMP)
	bash .ci/sam-checks

## checkov: security scan of the template after the SAM transform, 0 failed checks (checkov in its own .checkov-venv)
checkov: $(STAMP)
	bash .ci/checkov

## infra: the SAM checks, the security scan and the template tests only
infra: sam-checks checkov
	$(BIN)/python -m pytest tests/infrastructure -q
