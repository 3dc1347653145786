#!/usr/bin/env bash
# The project's own Apache Kafka broker: one combined KRaft node on 127.0.0.1, assembled from the
# published jars (fetched once with Maven, cached outside the git tree), data under var/kafka.
set -euo pipefail

usage() {
  cat <<EOF
usage: $(basename "$0") {fetch|start|stop|kill|status|logs [-f]}

  fetch    download the Kafka $KAFKA_VERSION jars with Maven into $LIBS (once)
  start    fetch if needed, format the data dir once, start the broker and wait until it
           answers a metadata request (up to ${START_TIMEOUT}s); does nothing if already running
  stop     SIGTERM, wait up to ${STOP_TIMEOUT}s, then SIGKILL with a warning
  kill     SIGKILL at once (crash tests); the data dir is kept
  status   print running/stopped; exit 0 when up, 3 when down
  logs     print the last 100 lines of $LOG_FILE (-f to follow)

environment:
  STREAMOPS_KAFKA_PORT             client port (default 9092)
  STREAMOPS_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093)
  STREAMOPS_VAR_DIR                data, pid and logs (default <repo>/var)
  STREAMOPS_CACHE                  jar cache (default ~/.cache/streamops)
  PYTHON                           interpreter for the readiness check (default python3)
EOF
}

KAFKA_VERSION=4.1.2
START_TIMEOUT=60
STOP_TIMEOUT=30

CACHE_DIR=${STREAMOPS_CACHE:-$HOME/.cache/streamops}/kafka-$KAFKA_VERSION
LIBS=$CACHE_DIR/libs
FETCH_MARKER=$CACHE_DIR/fetch-complete
PORT=${STREAMOPS_KAFKA_PORT:-9092}
CONTROLLER_PORT=${STREAMOPS_KAFKA_CONTROLLER_PORT:-9093}
PYTHON=${PYTHON:-python3}
NAME=kafka
PROC_PATTERN="kafka\\.Kafka"
# shellcheck source=../process.sh
source "$(dirname "${BASH_SOURCE[0]}")/../process.sh"
PROPS=$DATA_DIR/server.properties
CLUSTER_ID_FILE=$DATA_DIR/cluster.id

port_owner() {
  if command -v ss >/dev/null; then
    ss -ltnpH "sport = :$1" 2>/dev/null | sed 's/.*users:/users:/' | head -1
  fi
}

fetch() {
  [[ -f $FETCH_MARKER ]] && return 0
  command -v mvn >/dev/null || die "Maven not found: install it (apt-get install maven) and re-run"
  command -v java >/dev/null || die "Java not found: install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  mkdir -p "$CACHE_DIR"
  # Two checkouts may start at once; the second waits and then finds the marker.
  exec 9>"$CACHE_DIR/fetch.lock"
  if command -v flock >/dev/null; then flock 9; fi
  [[ -f $FETCH_MARKER ]] && return 0

  say "fetching Kafka $KAFKA_VERSION jars with Maven (first time only, ~1 min)..."
  local partial=$CACHE_DIR/libs.partial
  rm -rf "$partial" "$LIBS"
  local started=$SECONDS
  if ! mvn -B -q -Dstyle.color=never -f "$HERE/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$partial" >"$CACHE_DIR/fetch.log" 2>&1; then
    tail -n 30 "$CACHE_DIR/fetch.log" >&2
    die "Maven could not fetch the jars (network? proxy in ~/.m2/settings.xml?); re-run to retry"
  fi
  ls "$partial"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 \
    || die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing from $partial"
  # Rename then marker: an interrupted fetch leaves no marker and is redone from scratch.
  mv "$partial" "$LIBS"
  echo "kafka $KAFKA_VERSION, $(ls "$LIBS" | wc -l) jars, fetched $(date -u +%FT%TZ)" >"$FETCH_MARKER"
  say "fetched $(ls "$LIBS" | wc -l) jars into $LIBS in $((SECONDS - started))s"
  exec 9>&-
}

# -cp is quoted: java itself expands the trailing '*' to every jar in the folder.
# The collector settings are those of Kafka's own start scripts (kafka-run-class.sh): short
# young pauses, since every pause is in the latency of whatever crosses the broker then.
JAVA_ARGS=(-Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$HERE/log4j2.xml" -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*")

write_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  if [[ ! -s $CLUSTER_ID_FILE ]]; then
    # 16 random bytes, URL-safe base64 without padding: what `kafka-storage random-uuid` prints.
    # Like Kafka's own, never one starting with '-', which the format tool reads as an option.
    local id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    printf '%s' "$id" >"$CLUSTER_ID_FILE"
  fi
  sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$DATA_DIR|g" "$HERE/server.properties.template" >"$PROPS"
}

format_storage() {
  [[ -f $DATA_DIR/metadata/meta.properties ]] && return 0
  say "formatting $DATA_DIR (cluster id $(cat "$CLUSTER_ID_FILE"))"
  java "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$(cat "$CLUSTER_ID_FILE")" -c "$PROPS" \
    --ignore-formatted >>"$LOG_FILE" 2>&1 \
    || { tail -n 30 "$LOG_FILE" >&2; die "formatting failed (see above); to start afresh: rm -rf $DATA_DIR"; }
}

launch() {
  local detach=()
  # Its own session, so that the shell or CI job that started it can end without taking it along.
  command -v setsid >/dev/null && detach=(setsid)
  echo "=== $(date -u +%FT%TZ) starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT" >>"$LOG_FILE"
  # The inner shell writes its own pid and then becomes java, so the pid file names the broker.
  nohup "${detach[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" \
    java "${JAVA_ARGS[@]}" kafka.Kafka "$PROPS" </dev/null >>"$LOG_FILE" 2>&1 &
  local tries=0
  until [[ -s $PID_FILE ]]; do
    ((++tries > 50)) && fail_start "the broker process did not start"
    sleep 0.1
  done
}

fail_start() {
  echo >&2
  echo "kafka: error: $1. Last 30 lines of $LOG_FILE:" >&2
  tail -n 30 "$LOG_FILE" >&2 || true
  cat >&2 <<EOF
kafka: what to do: read the log above; if the data dir is from another cluster or damaged,
  run \`$0 kill && rm -rf $DATA_DIR\` and start again; if a port is taken, set
  STREAMOPS_KAFKA_PORT / STREAMOPS_KAFKA_CONTROLLER_PORT.
EOF
  exit 1
}

wait_ready() {
  local started=$SECONDS pid
  printf 'kafka: waiting for the broker to answer a metadata request'
  while ((SECONDS - started < START_TIMEOUT)); do
    pid=$(our_pid) || fail_start "the broker process exited during start-up"
    if port_open "$PORT" && "$PYTHON" "$HERE/kafka_ready.py" "127.0.0.1:$PORT" 2 2>/dev/null; then
      echo
      say "ready on 127.0.0.1:$PORT (pid $pid) after $((SECONDS - started))s; log $LOG_FILE"
      return 0
    fi
    printf '.'
    sleep 1
  done
  fail_start "the broker did not answer within ${START_TIMEOUT}s"
}

start() {
  command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found (needed for the readiness check)"
  local pid
  if pid=$(our_pid); then
    if port_open "$PORT"; then
      say "already running (pid $pid) on 127.0.0.1:$PORT"
      return 0
    fi
    wait_ready
    return 0
  fi
  rm -f "$PID_FILE"
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port 127.0.0.1:$p is taken by another process ($(port_owner "$p")), not by this \
checkout's broker ($PID_FILE); stop it, or set STREAMOPS_KAFKA_PORT / STREAMOPS_KAFKA_CONTROLLER_PORT"
    fi
  done
  fetch
  write_config
  format_storage
  launch
  wait_ready
}




broker_answers() { port_open "$PORT"; }

status() {
  report_status broker_answers \
    "on 127.0.0.1:$PORT, controller 127.0.0.1:$CONTROLLER_PORT, data $DATA_DIR" \
    "starting or unhealthy" "port $PORT not answering" "data $DATA_DIR"
}

logs() {
  [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
  if [[ ${1:-} == -f ]]; then tail -n 100 -f "$LOG_FILE"; else tail -n 100 "$LOG_FILE"; fi
}

case "${1:-}" in
  fetch) fetch; say "jars ready in $LIBS" ;;
  start) start ;;
  stop) stop ;;
  kill) kill_now ;;
  status) status ;;
  logs) logs "${2:-}" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
