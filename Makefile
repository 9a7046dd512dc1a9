# flash-sale checkout: `make run` brings the shop up, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP_VERSION := 26.3
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml devstack/sqs_server/package-lock.json | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast fuzz chaos experiment lint format schema lock clean

help: ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# pyproject.toml's dependency groups: runtime, local, test, lab, lint; `dev` is all of them. The local
# SQS server (fauxqs) comes from npm, pinned by devstack/sqs_server/package-lock.json.
$(STAMP): pyproject.toml devstack/sqs_server/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet --group dev
	npm ci --prefix devstack/sqs_server --no-audit --no-fund --loglevel=error
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv, install every pinned dependency group and the local SQS server

# `make run` settings; override any of them: `make run WORKER_CONCURRENCY=5 PAYMENT_LATENCY_SECONDS=1`
run: export DJANGO_SETTINGS_MODULE = config.settings.local
run: export PATH := $(abspath $(BIN)):$(PATH)
run: export WEB_PORT ?= 8000
run: export SQS_PORT ?= 9324
run: export PAYMENT_SANDBOX_PORT ?= 8001
run: export SQS_ENDPOINT_URL ?= http://127.0.0.1:$(SQS_PORT)
run: export PAYMENT_PROVIDER_URL ?= http://127.0.0.1:$(PAYMENT_SANDBOX_PORT)
run: export WORKER_CONCURRENCY ?= 20
run: export PAYMENT_LATENCY_SECONDS ?= 3
run: export PAYMENT_PROVIDER_CONCURRENCY ?= 1
run: export PYTHONUNBUFFERED = 1
run: export LOG_FORMAT ?= console
run: export WEB_METRICS_PORT ?= 9100
run: export WORKER_METRICS_PORT ?= 9101
run: export SWEEPER_METRICS_PORT ?= 9102
run: export RELAY_METRICS_PORT ?= 9103
run: install ## Bring the whole shop up on 127.0.0.1:8000 on PostgreSQL (DATABASE_URL; Ctrl-C stops everything)
	@$(BIN)/python -m devstack.database
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_catalogue
	@$(BIN)/python manage.py ensure_local_admin
	@echo "Shop:     http://127.0.0.1:$(WEB_PORT)/"
	@echo "API:      http://127.0.0.1:$(WEB_PORT)/api/products  (POST /api/orders/async, /api/orders/sync)"
	@echo "Provider: $(PAYMENT_PROVIDER_URL)/v1/stats   SQS: $(SQS_ENDPOINT_URL)"
	@echo "Metrics:  http://127.0.0.1:$(WEB_METRICS_PORT)/metrics (web), :$(WORKER_METRICS_PORT) (worker), :$(SWEEPER_METRICS_PORT) (sweeper), :$(RELAY_METRICS_PORT) (relay)"
	@echo "Worker concurrency $(WORKER_CONCURRENCY); payment latency $(PAYMENT_LATENCY_SECONDS)s, provider limit $(PAYMENT_PROVIDER_CONCURRENCY) (0 = none)"
	$(BIN)/honcho start

test: install ## Run the whole test suite on PostgreSQL (DATABASE_URL, default 127.0.0.1:5432)
	$(BIN)/python -m pytest $(ARGS)

test-fast: install ## The unit tier alone: no subprocess, a few seconds (the inner loop)
	$(BIN)/python -m pytest -m unit -q $(ARGS)

fuzz: install ## Fuzz every API operation against a live stack (schemathesis; FUZZ_MAX_EXAMPLES=200)
	$(BIN)/python -m pytest tests/test_api_fuzz.py -s -q $(ARGS)

chaos: install ## Fault injection on a stack of its own: fifteen scenarios, one line of figures each
	$(BIN)/python -m loadtests.chaos $(ARGS)

# The load study on a stack of its own: `make experiment` (about 41 min), `make experiment ARGS=--quick`
# (7 to 8 min); `make experiment ARGS=--help` lists the knobs. Its saturation phase installs wrk with
# apt-get when it is missing (as root; `--saturation-seconds 0` skips the phase).
experiment: install ## Re-create the seed's measurements; writes reports/<timestamp>/report.md (ARGS=--quick)
	$(BIN)/python -m loadtests.experiment $(ARGS)

lint: install ## Lint, check formatting and types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy config core orders payments shop queues sizing observability console deploy

schema: install ## Regenerate docs/openapi.yaml from the code (tests/test_openapi.py fails while they differ)
	DJANGO_SETTINGS_MODULE=config.settings.local $(BIN)/python manage.py spectacular --validate --fail-on-warn --file docs/openapi.yaml

# The image installs deploy/requirements.lock alone (--no-deps --require-hashes): requirements.txt with
# every transitive dependency pinned and hashed. Run after editing requirements.txt; pins already in the
# lock stay unless `make lock ARGS=--upgrade`. No index URL is written: the lock installs from any mirror.
lock: install ## Regenerate deploy/requirements.lock (the image's hashed pins) from requirements.txt
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
		--output-file deploy/requirements.lock $(ARGS) requirements.txt

format: install ## Format the code
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv and run files
	rm -rf $(VENV) .run .pytest_cache
