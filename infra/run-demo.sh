#!/usr/bin/env bash
# `make demo [ARGS=--keep]`: start Kafka and Redis, run `streamops demo` (the closed loop: it
# starts and supervises every service itself, logs in var/log/demo-*.log), and stop what this
# script started unless --keep was given (then `streamops demo --stop` and `make down`).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
BIN=$(dirname "$PYTHON")
keep=0
for arg in "$@"; do [ "$arg" = "--keep" ] && keep=1; done
started=()

cleanup() {
  if [ $keep -eq 1 ]; then
    echo "==> --keep: leaving Kafka and Redis running (stop them with: make down)"
    return
  fi
  for part in "${started[@]}"; do
    echo "==> stopping $part (started by make demo)"
    bash "infra/$part/$part.sh" stop >/dev/null || true
  done
}
trap cleanup EXIT

for part in kafka redis; do
  if ! bash "infra/$part/$part.sh" status >/dev/null 2>&1; then
    PYTHON="$PYTHON" bash "infra/$part/$part.sh" start || { echo "could not start $part: see above"; exit 1; }
    started+=("$part")
  fi
done
"$BIN/streamops" demo "$@"
