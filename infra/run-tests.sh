#!/usr/bin/env bash
# `make test`: lint, then start Kafka and Redis (only those not already running), run the unit,
# integration and e2e tiers, and stop what this script started, whatever the outcome.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PYTHON")
started=()

cleanup() {
  for part in "${started[@]}"; do
    echo "==> stopping $part (started by make test)"
    bash "infra/$part/$part.sh" stop || true
  done
}
trap cleanup EXIT

echo "==> lint: ruff and import-linter contracts"
"$BIN/ruff" check services tests loadtest || { echo "lint failed: fix the findings above (ruff check --fix helps)"; exit 1; }
"$BIN/lint-imports" || { echo "import contracts broken: a service imports another, or a domain module imports a Kafka client"; exit 1; }

echo "==> unit tests"
"$PYTHON" -m pytest -m unit -q -p no:cacheprovider || exit 1

# The suite runs on the secured broker `make up` starts: its own clients log in as admin, the
# services it starts as themselves (tests/kafka_login.py).

for part in kafka redis; do
  if ! bash "infra/$part/$part.sh" status >/dev/null 2>&1; then
    PYTHON="$PYTHON" bash "infra/$part/$part.sh" start || { echo "could not start $part: see above"; exit 1; }
    started+=("$part")
  fi
done
PYTHON="$PYTHON" "$BIN/streamops" topics >/dev/null || { echo "could not create topics"; exit 1; }

echo "==> integration tests (real Kafka at ${STREAMOPS_KAFKA_BOOTSTRAP:-127.0.0.1:9092}, real Redis on port ${STREAMOPS_REDIS_PORT:-6379})"
"$PYTHON" -m pytest -m integration -q -p no:cacheprovider --durations=25 || exit 1

# The dashboard's browser test drives Debian's chromium (browser downloads do not work here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing Debian's chromium for the dashboard's browser test (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q chromium >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
      || { echo "apt-get install chromium failed: install it and re-run"; exit 1; }
  else
    echo "/usr/bin/chromium not found: install Debian's chromium (sudo apt-get install chromium)"
    echo "and re-run; the dashboard's e2e test fails without it"
  fi
fi

echo "==> e2e tests"
"$PYTHON" -m pytest -m e2e -q -p no:cacheprovider --durations=10
rc=$?
if [ $rc -eq 5 ]; then
  echo "no e2e tests collected yet"
  rc=0
fi
exit $rc
