#!/usr/bin/env bash
# `make soak [DURATION=30m] [ARGS=...]`: the R17 soak on a private Kafka and Redis (var/soak,
# free ports; the development stack is never touched). Bounded by --duration; Ctrl-C stops
# everything it started. Writes var/soak/soak-report.json and .png; exit 1 names failed checks.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHON
# The load tools still connect without logins: this runs on the PLAINTEXT broker (see
# docs/security.md; the secured broker's cost is measured beside it once they log in).
export STREAMOPS_INSECURE=1
exec "$PYTHON" -m loadtest.soak "$@"
