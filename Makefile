# streamops: every target works from a fresh clone on a fresh machine.
#   make test   set up, start Kafka + Redis, run lint + unit + integration + e2e, stop them
#   make demo   set up, start everything, run the demo scenario (ARGS=--keep leaves it running)
#   make up / make down / make status   (make up BROKERS=3: a three-node Kafka cluster)
#   make bench  benchmarks (writes BENCHMARKS.md and loadtest/results/)
#   make soak   30 minutes of load and faults on a private Kafka + Redis (DURATION=5m: shorter)

PYTHON_BOOT ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
BROKERS ?= 1

.PHONY: help venv up down status lint test unit demo bench soak clean

help:
	@sed -n '2,6p' Makefile | sed 's/^# //'

$(STAMP): pyproject.toml
	@command -v $(PYTHON_BOOT) >/dev/null || { echo "error: $(PYTHON_BOOT) not found; install Python 3.11 (or run make PYTHON_BOOT=/path/to/python3.11)"; exit 1; }
	@echo "==> creating $(VENV) and installing streamops with its dev extras (first time: a few minutes)"
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

venv: $(STAMP)

up: venv
	@PYTHON=$(PY) $(VENV)/bin/streamops infra up --brokers $(BROKERS)

down:
	@if [ -x $(VENV)/bin/streamops ]; then $(VENV)/bin/streamops infra down; \
	 else bash infra/redis/redis.sh stop; bash infra/kafka/kafka.sh stop; fi

status: venv
	@$(VENV)/bin/streamops infra status

lint: venv
	@echo "==> ruff"
	@$(VENV)/bin/ruff check services tests loadtest
	@echo "==> import-linter"
	@$(VENV)/bin/lint-imports

unit: venv
	@$(PY) -m pytest -m unit -q

test: venv
	@PYTHON=$(PY) bash infra/run-tests.sh

demo: venv
	@PYTHON=$(PY) bash infra/run-demo.sh $(ARGS)

bench: venv
	@PYTHON=$(PY) bash infra/run-bench.sh $(ARGS)

# The R17 soak, 30 minutes unless DURATION=5m (or ARGS=--duration 300) says otherwise.
soak: venv
	@PYTHON=$(PY) bash infra/run-soak.sh $(if $(DURATION),--duration $(DURATION)) $(ARGS)

clean: down
	rm -rf var
