#!/usr/bin/env bash
# shellcheck shell=bash
# Shared by manage_redis_server.sh and manage_sentinel.sh: environment defaults, binaries and the
# start/stop/restart/status logic (LSB exit codes). Source it; do not run it.
#
# Environment (all optional):
#   REDIS_HOST REDIS_PORT REDIS_PASSWORD          used when the config does not say (bind/port/requirepass)
#   SENTINEL_HOSTS SENTINEL_MASTER_NAME SENTINEL_PASSWORD
#   REDIS_SERVER_BIN REDIS_CLI_BIN                binaries (default: from PATH)
#   REDIS_START_TIMEOUT REDIS_STOP_TIMEOUT        seconds (default 10 and 15)

REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_PASSWORD="${REDIS_PASSWORD:-}"
SENTINEL_HOSTS="${SENTINEL_HOSTS:-127.0.0.1:26379}"
SENTINEL_MASTER_NAME="${SENTINEL_MASTER_NAME:-mymaster}"
SENTINEL_PASSWORD="${SENTINEL_PASSWORD:-}"
REDIS_SERVER_BIN="${REDIS_SERVER_BIN:-redis-server}"
REDIS_CLI_BIN="${REDIS_CLI_BIN:-redis-cli}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-10}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-15}"
export REDIS_HOST REDIS_PORT SENTINEL_HOSTS SENTINEL_MASTER_NAME

# LSB init-script exit codes.
readonly LSB_OK=0 LSB_DEAD_PIDFILE=1 LSB_GENERIC=1 LSB_BAD_ARGS=2 LSB_NOT_RUNNING=3
readonly LSB_NOT_INSTALLED=5 LSB_NOT_CONFIGURED=6

PROG="$(basename "${0:-manage}")"

abspath() { if [[ "$1" == /* ]]; then printf '%s' "$1"; else printf '%s/%s' "$PWD" "$1"; fi; }

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { # die CODE MESSAGE...
  local code="$1"; shift
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit "$code"
}

# conf_value FILE DIRECTIVE: first value of a directive in a Redis config file, quotes removed.
conf_value() {
  awk -v key="$2" 'tolower($1) == key { v = $2; gsub(/^"|"$/, "", v); print v; exit }' "$1"
}

# pid_of PIDFILE: the pid written in the file, or nothing.
pid_of() {
  local pid=""
  if [[ -r "$1" ]]; then read -r pid <"$1" || true; fi
  if [[ "$pid" =~ ^[0-9]+$ ]]; then printf '%s' "$pid"; fi
}

# is_redis_pid PID: the process is alive (not a zombie) and is a redis-server/redis-sentinel
# (not a recycled pid).
is_redis_pid() {
  local comm
  kill -0 "$1" 2>/dev/null || return 1
  [[ "$(proc_state "$1")" != Z ]] || return 1
  comm="$(cat "/proc/$1/comm" 2>/dev/null || ps -p "$1" -o comm= 2>/dev/null || true)"
  [[ "$comm" == redis-server* || "$comm" == redis-sentinel* || "$comm" == redis-check* ]]
}

# proc_state PID: R, S, T (stopped), Z (zombie)... from /proc; empty when unknown.
proc_state() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null || true)"
  stat="${stat##*) }"
  printf '%s' "${stat%% *}"
}

# is_frozen PID: stopped by SIGSTOP (state T).
is_frozen() {
  [[ "$(proc_state "$1")" == T ]]
}

# instance_status PIDFILE: prints a line, returns 0 running / 1 dead with stale pidfile / 3 not running.
instance_status() {
  local pidfile="$1" pid
  pid="$(pid_of "$pidfile")"
  if [[ -z "$pid" ]]; then
    if [[ -e "$pidfile" ]]; then
      say "dead: pidfile $pidfile holds no pid"; return "$LSB_DEAD_PIDFILE"
    fi
    say "not running"; return "$LSB_NOT_RUNNING"
  fi
  if is_redis_pid "$pid"; then
    if is_frozen "$pid"; then say "running (pid $pid, frozen by SIGSTOP)"; else say "running (pid $pid)"; fi
    return "$LSB_OK"
  fi
  say "dead: stale pidfile $pidfile (pid $pid is gone)"
  return "$LSB_DEAD_PIDFILE"
}

# Connection details for a config: host (first bind address, loopback when binding all), port, password.
instance_endpoint() { # instance_endpoint CONF DEFAULT_PORT DEFAULT_PASSWORD
  local conf="$1" host port pass
  host="$(conf_value "$conf" bind)"
  case "$host" in ""|"*"|"0.0.0.0"|"-"*) host="$REDIS_HOST" ;; esac
  port="$(conf_value "$conf" port)"
  pass="$(conf_value "$conf" requirepass)"
  EP_HOST="$host"; EP_PORT="${port:-$2}"; EP_PASS="${pass:-$3}"
}

# cli ARGS...: redis-cli against the instance; the password goes through the environment, never argv.
cli() {
  REDISCLI_AUTH="$EP_PASS" timeout 5 "$REDIS_CLI_BIN" --no-auth-warning -h "$EP_HOST" -p "$EP_PORT" "$@"
}

log_tail() { # log_tail CONF: the last lines of the instance's log, indented
  local logfile
  logfile="$(conf_value "$1" logfile)"
  if [[ -n "$logfile" && -r "$logfile" ]]; then tail -n 5 "$logfile" | sed 's/^/    /' >&2; fi
}

# start_failure ERRFILE CONF: why a start failed, on one line (stderr, else the log's last warning).
start_failure() {
  local why logfile
  why="$(grep -v -e '^\s*$' -e '^\*\*\*' "$1" | tr '\n' ' ' | tr -s ' ' || true)"
  if [[ -z "$why" ]]; then
    logfile="$(conf_value "$2" logfile)"
    [[ -n "$logfile" && -r "$logfile" ]] && why="$(grep ' # ' "$logfile" | tail -n 2 | sed 's/^.* # //' | tr '\n' ' ' || true)"
  fi
  printf '%s' "${why:-no reason given}"
}

instance_start() { # instance_start KIND CONF PIDFILE
  local kind="$1" conf="$2" pidfile="$3" pid errfile deadline reply=""
  command -v "$REDIS_SERVER_BIN" >/dev/null 2>&1 ||
    die "$LSB_NOT_INSTALLED" "$REDIS_SERVER_BIN not found: install redis-server (apt-get install redis-server) or set REDIS_SERVER_BIN"
  [[ -r "$conf" ]] || die "$LSB_NOT_CONFIGURED" "config $conf does not exist or is unreadable"
  if instance_status "$pidfile" >/dev/null; then
    say "already running (pid $(pid_of "$pidfile"))"; return "$LSB_OK"
  fi
  rm -f "$pidfile"
  local -a args=("$conf")
  [[ "$kind" == sentinel ]] && args+=(--sentinel)
  # Run in the background ourselves (not --daemonize) so an early exit is seen at once, with its reason.
  errfile="$(mktemp)"
  setsid "$REDIS_SERVER_BIN" "${args[@]}" --daemonize no --pidfile "$pidfile" </dev/null >/dev/null 2>"$errfile" &
  pid=$!
  deadline=$((SECONDS + REDIS_START_TIMEOUT))
  while ((SECONDS < deadline)); do
    # alive, not is_redis_pid: until its exec completes the child still looks like bash.
    if ! alive "$pid"; then
      printf '%s: %s exited at start (%s): %s\n' "$PROG" "$kind" "$conf" "$(start_failure "$errfile" "$conf")" >&2
      rm -f "$errfile" "$pidfile"
      return "$LSB_GENERIC"
    fi
    if [[ "$(pid_of "$pidfile")" == "$pid" ]]; then
      reply="$(cli PING 2>/dev/null)"
      # LOADING: it answers, but serves nothing until its RDB/AOF is in memory; started means serving.
      if [[ -n "$reply" && "$reply" != LOADING* ]]; then
        rm -f "$errfile"
        say "started (pid $pid, $EP_HOST:$EP_PORT)"; return "$LSB_OK"
      fi
    fi
    sleep 0.02
  done
  if [[ "$reply" == LOADING* ]]; then
    # Killing a server halfway through loading a big dataset would only restart the wait: leave it be.
    rm -f "$errfile"
    say "started (pid $pid, $EP_HOST:$EP_PORT), still loading its dataset after ${REDIS_START_TIMEOUT}s"
    return "$LSB_OK"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$errfile" "$pidfile"
  printf '%s: %s did not answer on %s:%s within %ss; log tail:\n' \
    "$PROG" "$kind" "$EP_HOST" "$EP_PORT" "$REDIS_START_TIMEOUT" >&2
  log_tail "$conf"
  return "$LSB_GENERIC"
}

alive() { kill -0 "$1" 2>/dev/null && [[ "$(proc_state "$1")" != Z ]]; }

wait_gone() { # wait_gone PID SECONDS
  local deadline=$((SECONDS + $2))
  while alive "$1" && ((SECONDS < deadline)); do sleep 0.02; done
  ! alive "$1"
}

instance_stop() { # instance_stop KIND CONF PIDFILE
  local kind="$1" conf="$2" pidfile="$3" pid rc=0
  instance_status "$pidfile" >/dev/null || rc=$?
  if ((rc != LSB_OK)); then
    rm -f "$pidfile"; say "not running"; return "$LSB_OK"
  fi
  pid="$(pid_of "$pidfile")"
  if is_frozen "$pid"; then kill -CONT "$pid" 2>/dev/null || true; fi
  if [[ -r "$conf" ]]; then
    cli SHUTDOWN >/dev/null 2>&1 || true
  fi
  if ! wait_gone "$pid" "$REDIS_STOP_TIMEOUT"; then
    say "SHUTDOWN did not stop pid $pid, sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" 5; then
      say "pid $pid ignored SIGTERM, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null
      wait_gone "$pid" 5 || die "$LSB_GENERIC" "could not stop pid $pid"
    fi
  fi
  rm -f "$pidfile"
  say "stopped $kind (pid $pid)"
}

# manage_main KIND DEFAULT_PORT DEFAULT_PASSWORD start|stop|restart|status CONF PIDFILE
manage_main() {
  local kind="$1" default_port="$2" default_pass="$3"
  shift 3
  if (($# != 3)); then
    die "$LSB_BAD_ARGS" "usage: $PROG start|stop|restart|status CONFIG PIDFILE"
  fi
  # Absolute paths: redis-server chdirs to its `dir` before writing the pidfile.
  local action="$1" conf pidfile
  conf="$(abspath "$2")"; pidfile="$(abspath "$3")"
  if [[ -r "$conf" ]]; then
    instance_endpoint "$conf" "$default_port" "$default_pass"
  else
    EP_HOST="$REDIS_HOST"; EP_PORT="$default_port"; EP_PASS="$default_pass"
  fi
  case "$action" in
    start) instance_start "$kind" "$conf" "$pidfile" ;;
    stop) instance_stop "$kind" "$conf" "$pidfile" ;;
    restart) instance_stop "$kind" "$conf" "$pidfile" && instance_start "$kind" "$conf" "$pidfile" ;;
    status) instance_status "$pidfile" ;;
    *) die "$LSB_BAD_ARGS" "unknown action '$action' (start|stop|restart|status)" ;;
  esac
}
