#!/usr/bin/env bash
# Process plumbing shared by the infra/*/*.sh scripts (sourced, not run).
# The sourcing script sets NAME, PROC_PATTERN (what `ps` must show for our pid) and STOP_TIMEOUT
# before sourcing; this sets where that part keeps its files, the same way for every part.

HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)   # the sourcing script's folder
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAR_DIR=${STREAMOPS_VAR_DIR:-$REPO_ROOT/var}
DATA_DIR=$VAR_DIR/$NAME
LOG_DIR=$VAR_DIR/log
LOG_FILE=$LOG_DIR/$NAME.log
PID_FILE=$DATA_DIR/$NAME.pid

say() { echo "$NAME: $*"; }
die() { echo "$NAME: error: $*" >&2; exit 1; }

# The pid file alone is not proof: after a reboot or kill -9 the pid may belong to anything.
our_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  ps -p "$pid" -o args= 2>/dev/null | grep -q "$PROC_PATTERN" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_exit() {
  local pid=$1 limit=$2 started=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - started >= limit)) && return 1
    sleep 0.1
  done
}

stop() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping (pid $pid)"
  kill -TERM "$pid"
  if ! wait_exit "$pid" "$STOP_TIMEOUT"; then
    echo "$NAME: warning: no exit ${STOP_TIMEOUT}s after SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" 10 || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

# `status`: exit 0 and "running" when our pid is alive and CHECK (a command) passes, else 3.
# Usage: report_status CHECK "running detail" "unhealthy word" "why unhealthy" "data detail"
report_status() {
  local check=$1 running=$2 word=$3 why=$4 detail=$5 pid
  if pid=$(our_pid) && $check; then
    say "running (pid $pid) $running"
    return 0
  fi
  if [[ -n ${pid:-} ]]; then
    say "$word (pid $pid alive, $why), $detail"
  else
    say "stopped (port $PORT, $detail)"
  fi
  return 3
}

kill_now() {
  local pid
  if ! pid=$(our_pid); then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  kill -KILL "$pid"
  wait_exit "$pid" 10 || die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
  say "killed (pid $pid, SIGKILL)"
}
