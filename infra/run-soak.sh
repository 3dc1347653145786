#!/usr/bin/env bash
# `make soak [DURATION=30m] [ARGS=...]`: the R17 soak on a private Kafka and Redis (var/soak,
# free ports; the development stack is never touched). Bounded by --duration; Ctrl-C stops
# everything it started. Writes var/soak/soak-report.json and .png; exit 1 names failed checks.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHON
exec "$PYTHON" -m loadtest.soak "$@"
