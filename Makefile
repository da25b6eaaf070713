# smsdispatch: every entry point is a make target.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
CELERY  := $(BIN)/celery -A smsdispatch.workers.app
VENDORS := cue messangi smsbuddy restcomm skycore
comma   := ,
QUEUES  := $(subst $() ,$(comma),$(foreach v,$(VENDORS),sms.$(v) sms.$(v).priority) sms.default sms.maintenance callbacks)
# The targets that run smsdispatch (migrate, simulate, worker, beat, api,
# flower) read .env in the directory make runs in, with python-dotenv's
# `dotenv run` (the parser the settings use); a variable already in the
# environment wins over the file, as it does for the settings.
ENV_FILE ?= .env
DOTENV   = $(if $(wildcard $(ENV_FILE)),$(BIN)/dotenv -f $(ENV_FILE) run --no-override --)

.PHONY: setup demo test test-fast lint format typecheck bench chaos worker beat flower api simulate up down migrate clean

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
	$(BIN)/python -m bench.routing
	$(BIN)/python -m bench.callbacks

## The fault schedule (chaos/__main__.py) on the real pipeline; writes RELIABILITY.md.
## CHAOS_DATABASE_URL: the PostgreSQL database it may empty (default smsdispatch_chaos).
chaos: setup
	bash scripts/services.sh
	$(BIN)/python -m chaos $(CHAOS_ARGS)

migrate: setup
	$(DOTENV) $(BIN)/smsdispatch db upgrade

worker: setup
	$(DOTENV) $(CELERY) worker -Q $(QUEUES) -P threads -c 8 --loglevel INFO

beat: setup
	$(DOTENV) $(CELERY) beat --loglevel INFO

## The HTTP API and the delivery-report webhooks: API_HOST, API_PORT (127.0.0.1:8000).
api: setup
	$(DOTENV) $(BIN)/smsdispatch api

## Flower with basic auth: FLOWER_BASIC_AUTH=user:password in .env or the
## environment (required; it stays out of the command line). FLOWER_PORT,
## FLOWER_ADDRESS: where it listens.
flower: setup
	$(DOTENV) $(BIN)/python -m smsdispatch.monitoring.flower

## The vendor simulators; their settings are written into .env (README "Set-up by hand").
simulate: setup
	$(DOTENV) $(BIN)/smsdispatch simulate --env-file $(ENV_FILE)

up:
	docker compose up --build -d

down:
	docker compose down

clean:
	rm -rf .run .mypy_cache .ruff_cache .pytest_cache
