#!/usr/bin/env bash
# `make bench`: benchmarks on the real local broker, bounded in count and time.
# Writes loadtest/results/*.json and BENCHMARKS.md.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
started=()
# The figures below are taken on the PLAINTEXT broker; what the secured one costs is measured
# by bench_secured on two private brokers side by side (docs/security.md).
export STREAMOPS_INSECURE=1
cleanup() { for part in "${started[@]}"; do bash "infra/$part/$part.sh" stop >/dev/null || true; done; }
trap cleanup EXIT
for part in kafka redis; do
  if ! bash "infra/$part/$part.sh" status >/dev/null 2>&1; then
    PYTHON="$PYTHON" bash "infra/$part/$part.sh" start || exit 1
    started+=("$part")
  fi
done
echo "==> runner throughput (trivial handler) vs a bare consume/produce loop"
timeout 600 "$PYTHON" -m loadtest.bench_runner || exit 1
echo "==> scorer: drain rate vs baselines, latency at fixed rates, hot swap"
timeout 1200 "$PYTHON" -m loadtest.bench_scorer || exit 1
echo "==> drift: detection quality on seeded scenarios, drain rate vs the scorer's"
timeout 600 "$PYTHON" -m loadtest.bench_drift || exit 1
echo "==> alerting: breach-to-webhook latency vs a bare consumer, deliveries/s vs direct POSTs"
timeout 900 "$PYTHON" -m loadtest.bench_alerting || exit 1
echo "==> faults: kill -9 recovery (R2), lag after rebalances (R4), hot-swap time (R8) vs targets"
timeout 420 "$PYTHON" -m loadtest.bench_faults || exit 1
echo "==> security: scorer and drift drain rates on a secured broker beside a PLAINTEXT one"
timeout 900 "$PYTHON" -m loadtest.bench_secured || exit 1
"$PYTHON" -m loadtest.benchmarks_md || exit 1
