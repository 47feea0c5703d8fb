# Tollgate — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/tollgate
REDIS_TEST_URL ?= redis://127.0.0.1:6379/15
TEST_ENV := DATABASE_URL=$(PG_URL) REDIS_URL=$(REDIS_TEST_URL) CELERY_TASK_ALWAYS_EAGER=true AUDIT_CHECKPOINT_FILE=
PYTEST_WORKERS ?= 2
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run worker beat test test-fast lint format services bench schema soak

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" | grep -v "^ " || true
	@$(BIN)/python -c "import django, celery, allauth, rest_framework, pytest, scim2_client, scim2_server" || (echo "install failed" && exit 1)
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with dev extras

run: $(STAMP) ## start the portal with demo data on the embedded default (SQLite, in-process tasks; PORT=8000)
	@TOLLGATE_DEMO_LDAP_DIR=var/demo-ldap $(BIN)/python manage.py demo_ldap
	@TOLLGATE_DEMO_LDAP_DIR=var/demo-ldap $(BIN)/python manage.py seed_demo --migrate --if-empty
	@echo ""
	@echo "  Tollgate is starting on http://127.0.0.1:$(PORT)"
	@echo "  Demo logins (password tollgate-demo): engineer@ manager@ owner@ security@ admin@ finance@ auditor@ tollgate.test"
	@echo ""
	@$(BIN)/python manage.py runserver 127.0.0.1:$(PORT) --noreload

worker: $(STAMP) ## run a Celery worker (needs REDIS_URL)
	$(BIN)/celery -A portal worker -Q default,sync,ingest,notify,reports -l INFO --prefetch-multiplier=1

beat: $(STAMP) ## run Celery beat (needs REDIS_URL)
	$(BIN)/celery -A portal beat -l INFO

services: ## make sure PostgreSQL and Redis run (starts them if not)
	@bash scripts/ensure-services.sh

lint: $(STAMP) ## ruff lint + format check, layer contracts (import-linter), types (mypy), alert rules (promtool)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	promtool check rules deploy/prometheus/tollgate-rules.yml
	promtool test rules deploy/prometheus/tollgate-rules.test.yml

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

schema: $(STAMP) ## regenerate the committed OpenAPI schema
	$(BIN)/python manage.py spectacular --file docs/openapi.yaml --validate

test: $(STAMP) services lint ## install, start services, lint, check migrations, run every test (PostgreSQL, Redis, a real worker), then the SQLite smoke pass
	$(TEST_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q
	env -u DATABASE_URL -u REDIS_URL TOLLGATE_SMOKE=1 $(BIN)/python -m pytest -q -m sqlite -n $(PYTEST_WORKERS)

test-fast: $(STAMP) ## run the suite without lint and the smoke pass
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q -m "not browser"

soak: $(STAMP) services ## load + chaos soak (gunicorn, worker, Redis/PostgreSQL restarts; SOAK_MINUTES=10) -> bench/results/soak.json
	$(BIN)/python bench/soak.py --minutes $(or $(SOAK_MINUTES),10)

bench: $(STAMP) ## run every benchmark under bench/ (writes bench/results/)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done
