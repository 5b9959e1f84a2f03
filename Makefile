# The two commands: `make run` (train what is missing, then serve) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export CLM_DATA_DIR ?= ../shared/data
export CLM_HOST ?= 127.0.0.1
export CLM_PORT ?= 8000
CUSTOMERS ?= $(CLM_DATA_DIR)/telco_churn/WA_Fn-UseC_-Telco-Customer-Churn.csv
CARD_CUSTOMERS ?= $(CLM_DATA_DIR)/credit_card_churn/BankChurners.csv

.PHONY: run test fuzz lint typecheck train migrate customers profiles bench install clean docs-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the dependency list or the pins change.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	@mkdir -p var
	$(BIN)/clm train all --missing-only

# Bring the database (CLM_DATABASE_URL, default var/clm.db) to the newest migration: a step of its own, before
# the jobs and the service (which never migrates, so it can start while the database is down).
migrate: $(STAMP)
	@mkdir -p var
	$(BIN)/clm db upgrade

# Load or refresh the demo customers into the store: Telco's (the default churn line) and the card line's, whose
# rows are checked against its trained model. Idempotent: a re-run rewrites nothing and takes a few seconds.
customers: migrate train
	@mkdir -p var
	$(BIN)/clm ingest customers $(CUSTOMERS)
	$(BIN)/clm ingest customers --line card $(CARD_CUSTOMERS)

# Score the stored customers' profiles ahead of their calls with the champions, on every core, before the service
# starts; once it serves, the service keeps them current itself (after a promotion, a rollback or an ingest). A
# re-run scores only customers whose record or served versions changed.
profiles: train customers
	$(BIN)/clm score customers

run: train migrate customers profiles
	$(BIN)/python -m app

test: $(STAMP)
	$(BIN)/pytest -q

# The long Schemathesis campaign over every route (tests/test_openapi_fuzz.py): all checks, on SQLite and on
# PostgreSQL, FUZZ_EXAMPLES generated cases per operation and mode; `make test` runs the same with 10.
FUZZ_EXAMPLES ?= 250
fuzz: $(STAMP)
	CLM_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q tests/test_openapi_fuzz.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile
	$(BIN)/mkdocs build --strict --quiet
	$(BIN)/python scripts/check_deploy.py
	$(BIN)/kubernetes-validate --strict --quiet deploy/k8s/*.yaml

# Run every command the README and docs/ show (scripts/docs_check.py says how blocks are marked) against a real
# service on a spare port, serving a copy of var/: the commands may promote, ingest and record outcomes freely.
docs-check: train migrate customers profiles
	$(BIN)/python scripts/docs_check.py

typecheck: $(STAMP)
	$(BIN)/mypy app training model_registry

bench: train customers profiles
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.profile
	$(BIN)/python -m bench.contributions
	$(BIN)/python -m bench.refresh

clean:
	rm -rf $(VENV) var
