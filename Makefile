# smsdispatch: every entry point is a make target.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CELERY  := $(BIN)/celery -A smsdispatch.workers.app
VENDORS := cue messangi smsbuddy restcomm skycore
comma   := ,
QUEUES  := $(subst $() ,$(comma),$(foreach v,$(VENDORS),sms.$(v) sms.$(v).priority) sms.default sms.maintenance)

.PHONY: setup demo test test-fast lint format typecheck bench chaos worker beat flower simulate up down migrate clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

## One command: private Redis, SQLite, simulators, workers, beat, Flower and a sample.
demo: setup
	$(BIN)/smsdispatch demo

## The whole suite against the local Redis and PostgreSQL (started if down).
test: setup
	bash scripts/services.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -m "not slow" -n 2
	$(BIN)/pytest -m slow

test-fast: setup
	$(BIN)/pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: setup
	bash scripts/services.sh
	$(BIN)/python -m bench.transport
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.ratelimit
	$(BIN)/python -m bench.campaign
	$(BIN)/python -m bench.reports
	$(BIN)/python -m bench.ceilings

## The fault schedule (chaos/__main__.py) on the real pipeline; writes RELIABILITY.md.
## CHAOS_DATABASE_URL: the PostgreSQL database it may empty (default smsdispatch_chaos).
chaos: setup
	bash scripts/services.sh
	$(BIN)/python -m chaos $(CHAOS_ARGS)

migrate: setup
	$(BIN)/smsdispatch db upgrade

worker: setup
	$(CELERY) worker -Q $(QUEUES) -P threads -c 8 --loglevel INFO

beat: setup
	$(CELERY) beat --loglevel INFO

## Flower with basic auth: FLOWER_BASIC_AUTH=user:password (required; it stays
## out of the command line). FLOWER_PORT, FLOWER_ADDRESS: where it listens.
flower: setup
	@test -n "$$FLOWER_BASIC_AUTH" || { echo "set FLOWER_BASIC_AUTH=user:password"; exit 2; }
	$(BIN)/python -m smsdispatch.monitoring.flower

simulate: setup
	$(BIN)/smsdispatch simulate

up:
	docker compose up --build -d

down:
	docker compose down

clean:
	rm -rf .run .mypy_cache .ruff_cache .pytest_cache
