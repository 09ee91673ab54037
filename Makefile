# impex developer commands. `make run` and `make test` do all setup on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# SAM CLI, cfn-lint and checkov pin boto3/pydantic differently from the app: each lives in its own
# isolated uv tool environment under .tools/, never in .venv.
TOOLS := $(CURDIR)/.tools
export UV_TOOL_DIR := $(TOOLS)/envs
export UV_TOOL_BIN_DIR := $(TOOLS)/bin
export UV_PYTHON_DOWNLOADS := never
SAM := $(TOOLS)/bin/sam
CFN_LINT := $(TOOLS)/bin/cfn-lint
CHECKOV := $(TOOLS)/bin/checkov
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.58.0
CHECKOV_VERSION := 3.3.30
export SAM_CLI_TELEMETRY := 0
# sam build needs the Lambda runtime's interpreter (python3.13) on PATH; pyenv keeps it here.
# (A pyenv shim may exist without the version being active, so each candidate must actually run.)
PY313 := $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3.13 $$(command -v python3.13); do \
	  [ -x "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; \
	done)

.PHONY: help install tools lint test unit integration e2e build run serve bench stress fuzz contract clean

help:
	@echo "make run    - install, start the local stack and run the demo job"
	@echo "make test   - install, lint and run every test"
	@echo "make lint   - ruff, mypy --strict, import contracts, dead code, complexity, cfn-lint, sam validate, checkov"
	@echo "make build  - sam build for the python3.13 arm64 runtime"
	@echo "make bench  - throughput and memory against named baselines (BENCH_ARGS='--rows 100000')"
	@echo "make serve  - run the local stack in the foreground (IMPEX_LOCAL_PORT, default 3000)"
	@echo "make fuzz   - fuzz the readers and conversion for 10 CPU minutes (FUZZ_SECONDS=660)"
	@echo "make contract - Schemathesis against the local stack, 200 examples per operation (CONTRACT_EXAMPLES)"

$(VENV)/.installed: requirements/dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(UV) pip sync --quiet --python $(PY) requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

install: $(VENV)/.installed

$(SAM): | $(VENV)/.installed
	$(UV) tool install --quiet --python $(PYTHON) aws-sam-cli==$(SAM_CLI_VERSION)

$(CFN_LINT): | $(VENV)/.installed
	$(UV) tool install --quiet --python $(PYTHON) cfn-lint==$(CFN_LINT_VERSION)

$(CHECKOV): | $(VENV)/.installed
	$(UV) tool install --quiet --python $(PYTHON) checkov==$(CHECKOV_VERSION)

tools: $(SAM) $(CFN_LINT) $(CHECKOV)

lint: install tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared/impex functions
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/vulture
	$(PY) .ci/complexity.py
	$(CFN_LINT) template.yaml
	$(SAM) validate --lint --template template.yaml
	$(CHECKOV) --file template.yaml --config-file .checkov.yaml

test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

bench: install
	$(PY) -m benchmarks.run $(BENCH_ARGS)

# Fuzz the readers, detection, mapping and conversion for FUZZ_SECONDS in all, shared by the targets on
# both cores (default 660: at least 10 CPU minutes); make test runs an 8-second slice.
fuzz: install
	FUZZ_SECONDS=$${FUZZ_SECONDS:-660} $(VENV)/bin/pytest -n 2 -p no:cacheprovider tests/unit/test_fuzz.py

stress: install
	IMPEX_STRESS_SEEDS=$${IMPEX_STRESS_SEEDS:-500} $(VENV)/bin/pytest -n 2 tests/integration/test_queue_semantics.py -k killed

# The API contract (Schemathesis against the local stack) with CONTRACT_EXAMPLES per operation
# (default 200; make test runs 12).
contract: install
	IMPEX_CONTRACT_EXAMPLES=$${CONTRACT_EXAMPLES:-200} $(VENV)/bin/pytest -p no:randomly -s tests/e2e/test_contract.py

unit: install
	$(VENV)/bin/pytest tests/unit

integration: install
	$(VENV)/bin/pytest tests/integration

build: tools
	@if [ -z "$(PY313)" ]; then \
	  echo "sam build needs python3.13 (the Lambda runtime) on PATH; install it (e.g. pyenv install 3.13) and retry." >&2; \
	  exit 1; \
	fi
	PATH="$$(dirname $(PY313)):$$PATH" $(SAM) build --template template.yaml

run: install
	$(VENV)/bin/impex local demo

serve: install
	$(VENV)/bin/impex local serve

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
