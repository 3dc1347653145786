#!/usr/bin/env bash
# The project's own Apache Kafka broker: one combined KRaft node on 127.0.0.1, assembled from the
# published jars (fetched once with Maven, cached outside the git tree), data under var/kafka.
# With STREAMOPS_KAFKA_BROKERS=3: three combined nodes (ids 1-3, a static three-voter quorum),
# data under var/kafka-1..3, every topic replicated three times with min.insync.replicas 2.
set -euo pipefail

usage() {
  cat <<EOF
usage: $(basename "$0") {fetch|start [NODE]|stop [NODE]|kill [NODE]|status|logs [-f] [NODE]}

  fetch    download the Kafka $KAFKA_VERSION jars with Maven into $LIBS (once)
  start    fetch if needed, format the data dir once, start the broker and wait until it
           answers a metadata request (up to ${START_TIMEOUT}s); does nothing if already running
  stop     SIGTERM, wait up to ${STOP_TIMEOUT}s, then SIGKILL with a warning
  kill     SIGKILL at once (crash tests); the data dir is kept
  status   print running/stopped; exit 0 when up, 3 when down
  logs     print the last 100 lines of the broker's log (-f to follow)

  NODE (1-3, with STREAMOPS_KAFKA_BROKERS=3) acts on one node of the cluster; without it, start
  and status act on every node, and stop and kill on every node found under the var dir, single
  or clustered.

environment:
  STREAMOPS_KAFKA_BROKERS          1 (default) or 3 nodes
  STREAMOPS_KAFKA_PORT             client port (default 9092); node n of 3 uses PORT+2(n-1)
  STREAMOPS_KAFKA_CONTROLLER_PORT  KRaft controller port (default 9093); likewise
  STREAMOPS_KAFKA_HEAP             JVM heap per node (default 1g)
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
BASE_PORT=${STREAMOPS_KAFKA_PORT:-9092}
BASE_CONTROLLER_PORT=${STREAMOPS_KAFKA_CONTROLLER_PORT:-9093}
BROKERS=${STREAMOPS_KAFKA_BROKERS:-1}
HEAP=${STREAMOPS_KAFKA_HEAP:-1g}
PYTHON=${PYTHON:-python3}
NAME=kafka
PROC_PATTERN="kafka\\.Kafka"
# shellcheck source=../process.sh
source "$(dirname "${BASH_SOURCE[0]}")/../process.sh"
# shellcheck source=security.sh
source "$HERE/security.sh"
[[ $BROKERS == 1 || $BROKERS == 3 ]] || die "STREAMOPS_KAFKA_BROKERS must be 1 or 3, not $BROKERS"
[[ $HEAP =~ ^[0-9]+[mMgG]$ ]] || die "STREAMOPS_KAFKA_HEAP must look like 512m or 1g, not $HEAP"

# Point the per-node globals (those of process.sh included) at node N: the single node keeps
# var/kafka and the plain ports; node n of a cluster gets var/kafka-n and ports shifted by 2(n-1).
select_node() {
  NODE_ID=$1
  if [[ $BROKERS == 1 ]]; then
    NAME=kafka
    PORT=$BASE_PORT
    CONTROLLER_PORT=$BASE_CONTROLLER_PORT
    VOTERS="1@127.0.0.1:$CONTROLLER_PORT"
    CLUSTER_ID_FILE=$VAR_DIR/kafka/cluster.id
    RF=1 MIN_ISR=1
  else
    NAME=kafka-$NODE_ID
    PORT=$((BASE_PORT + 2 * (NODE_ID - 1)))
    CONTROLLER_PORT=$((BASE_CONTROLLER_PORT + 2 * (NODE_ID - 1)))
    local n voters=()
    for ((n = 1; n <= BROKERS; n++)); do
      voters+=("$n@127.0.0.1:$((BASE_CONTROLLER_PORT + 2 * (n - 1)))")
    done
    VOTERS=$(IFS=,; echo "${voters[*]}")
    # Every node of one cluster is formatted with the same id; node 1's folder keeps it.
    CLUSTER_ID_FILE=$VAR_DIR/kafka-1/cluster.id
    RF=3 MIN_ISR=2
  fi
  DATA_DIR=$VAR_DIR/$NAME
  LOG_FILE=$LOG_DIR/$NAME.log
  PID_FILE=$DATA_DIR/$NAME.pid
  PROPS=$DATA_DIR/server.properties
}

nodes() { seq 1 "$BROKERS"; }
select_node 1

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
JAVA_ARGS=(-Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$HERE/log4j2.xml" -Dkafka.logs.dir="$LOG_DIR" -cp "$LIBS/*")

write_config() {
  mkdir -p "$DATA_DIR" "$LOG_DIR" "$(dirname "$CLUSTER_ID_FILE")"
  if [[ ! -s $CLUSTER_ID_FILE ]]; then
    # 16 random bytes, URL-safe base64 without padding: what `kafka-storage random-uuid` prints.
    # Like Kafka's own, never one starting with '-', which the format tool reads as an option.
    local id=-
    while [[ $id == -* ]]; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    printf '%s' "$id" >"$CLUSTER_ID_FILE"
  fi
  # The secured broker's properties hold its own SCRAM password: readable by us only.
  (
    umask 077
    sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@NODE_ID@|$NODE_ID|g" -e "s|@VOTERS@|$VOTERS|g" \
      -e "s|@RF@|$RF|g" -e "s|@MIN_ISR@|$MIN_ISR|g" "$HERE/server.properties.template" >"$PROPS"
    listener_config >>"$PROPS"
  )
  chmod 0600 "$PROPS"
}

format_storage() {
  [[ -f $DATA_DIR/metadata/meta.properties ]] && return 0
  say "formatting $DATA_DIR (cluster id $(cat "$CLUSTER_ID_FILE"))"
  local scram=()
  insecure || scram=("@$(scram_argfile)")
  java "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$(cat "$CLUSTER_ID_FILE")" -c "$PROPS" \
    --ignore-formatted "${scram[@]}" >>"$LOG_FILE" 2>&1 \
    || { tail -n 30 "$LOG_FILE" >&2; die "formatting failed (see above); to start afresh: rm -rf $DATA_DIR"; }
  rm -f "$SECURITY_DIR/format.args"
  insecure || printf '%s\n' "${PRINCIPALS[@]}" >"$DATA_DIR/scram-users"
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
  echo "$NAME: error: $1. Last 30 lines of $LOG_FILE:" >&2
  tail -n 30 "$LOG_FILE" >&2 || true
  cat >&2 <<EOF
$NAME: what to do: read the log above; if the data dir is from another cluster or damaged,
  run \`$0 kill && rm -rf $DATA_DIR\` and start again; if a port is taken, set
  STREAMOPS_KAFKA_PORT / STREAMOPS_KAFKA_CONTROLLER_PORT.
EOF
  exit 1
}

# Ready means the node answers a metadata request that lists the node itself: a restarted node
# is listed only once the controller has unfenced it, which an open port alone does not show.
wait_ready() {
  local started=$SECONDS pid
  printf '%s: waiting for the broker to answer a metadata request' "$NAME"
  while ((SECONDS - started < START_TIMEOUT)); do
    pid=$(our_pid) || fail_start "the broker process exited during start-up"
    if port_open "$PORT" \
      && "$PYTHON" "$HERE/kafka_ready.py" "127.0.0.1:$PORT" 2 --node "$NODE_ID" "${READY_SECURED[@]}" 2>/dev/null; then
      echo
      say "ready on 127.0.0.1:$PORT (pid $pid) after $((SECONDS - started))s; log $LOG_FILE"
      return 0
    fi
    printf '.'
    sleep 1
  done
  fail_start "the broker did not answer within ${START_TIMEOUT}s"
}

# Launch the selected node unless it runs; LAUNCHED=1 when it was launched now.
launch_node() {
  LAUNCHED=0
  our_pid >/dev/null && return 0
  rm -f "$PID_FILE"
  local p
  for p in "$PORT" "$CONTROLLER_PORT"; do
    if port_open "$p"; then
      die "port 127.0.0.1:$p is taken by another process ($(port_owner "$p")), not by this \
checkout's broker ($PID_FILE); stop it, or set STREAMOPS_KAFKA_PORT / STREAMOPS_KAFKA_CONTROLLER_PORT"
    fi
  done
  fetch
  insecure || { make_security; set_aside_plaintext_data; }
  write_config
  format_storage
  launch
  LAUNCHED=1
}

wait_node() {
  local pid
  if ((LAUNCHED == 0)) && pid=$(our_pid) && port_open "$PORT"; then
    say "already running (pid $pid) on 127.0.0.1:$PORT"
    return 0
  fi
  wait_ready
}

# Every node is launched before any is waited for: a cluster node cannot answer until a
# majority of the voters is up.
start() {
  command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found (needed for the readiness check)"
  announce_mode
  local n launched=()
  for n in $(nodes); do
    select_node "$n"
    launch_node
    launched[n]=$LAUNCHED
  done
  for n in $(nodes); do
    select_node "$n"
    LAUNCHED=${launched[n]}
    wait_node
  done
  ((BROKERS > 1)) || return 0
  # Topics with three replicas can be created only once the controller knows all three brokers.
  local started=$SECONDS
  until "$PYTHON" "$HERE/kafka_ready.py" "127.0.0.1:$BASE_PORT" 2 --brokers "$BROKERS" "${READY_SECURED[@]}" 2>/dev/null; do
    ((SECONDS - started < START_TIMEOUT)) || die "the cluster did not list $BROKERS brokers"
    sleep 1
  done
  echo "kafka: cluster of $BROKERS ready; bootstrap $(bootstrap)"
}

start_one() {
  command -v "$PYTHON" >/dev/null || die "PYTHON=$PYTHON not found (needed for the readiness check)"
  announce_mode
  launch_node
  wait_node
}

bootstrap() {
  local n out=()
  for n in $(nodes); do out+=("127.0.0.1:$((BASE_PORT + 2 * (n - 1)))"); done
  (IFS=,; echo "${out[*]}")
}

# Run a command on every node found under the var dir, single or clustered, whatever
# STREAMOPS_KAFKA_BROKERS says now: `make down` must stop what `make up BROKERS=3` started.
# The nodes are handled at once: one by one, the last node of a cluster would wait for a
# quorum that has already gone before it could shut down cleanly.
each_found_node() {
  local dir name pids=() rc=0 pid
  for dir in "$VAR_DIR"/kafka "$VAR_DIR"/kafka-[0-9]*; do
    [[ -d $dir ]] || continue
    name=${dir##*/}
    if [[ $name == kafka ]]; then
      BROKERS=1
      select_node 1
    else
      BROKERS=3
      select_node "${name#kafka-}"
    fi
    ("$@") &
    pids+=($!)
  done
  ((${#pids[@]})) || { select_node 1; "$@"; return; }
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  return $rc
}

one_node() {
  [[ $1 =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= BROKERS)) \
    || die "no node $1: nodes are 1..$BROKERS (STREAMOPS_KAFKA_BROKERS=$BROKERS)"
  select_node "$1"
}

broker_answers() { port_open "$PORT"; }

status() {
  report_status broker_answers \
    "on 127.0.0.1:$PORT, controller 127.0.0.1:$CONTROLLER_PORT, data $DATA_DIR" \
    "starting or unhealthy" "port $PORT not answering" "data $DATA_DIR"
}

cluster_alive() {
  local n alive=1
  BROKERS=3
  for n in $(nodes); do
    select_node "$n"
    our_pid >/dev/null && alive=0
  done
  BROKERS=1
  select_node 1
  return $alive
}

status_all() {
  local n rc=0
  # A cluster started by `make up BROKERS=3` is reported by a plain `make status` too.
  if [[ $BROKERS == 1 ]] && ! our_pid >/dev/null && cluster_alive; then
    BROKERS=3
  fi
  for n in $(nodes); do
    select_node "$n"
    status || rc=3
  done
  return $rc
}

logs() {
  [[ -f $LOG_FILE ]] || die "no log yet at $LOG_FILE"
  if [[ ${1:-} == -f ]]; then tail -n 100 -f "$LOG_FILE"; else tail -n 100 "$LOG_FILE"; fi
}

case "${1:-}" in
  fetch) fetch; say "jars ready in $LIBS" ;;
  start) if [[ -n ${2:-} ]]; then one_node "$2"; start_one; else start; fi ;;
  stop) if [[ -n ${2:-} ]]; then one_node "$2"; stop; else each_found_node stop; fi ;;
  kill) if [[ -n ${2:-} ]]; then one_node "$2"; kill_now; else each_found_node kill_now; fi ;;
  status) status_all ;;
  logs)
    if [[ ${2:-} == -f ]]; then one_node "${3:-1}"; logs -f; else one_node "${2:-1}"; logs; fi
    ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
