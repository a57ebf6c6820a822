#!/usr/bin/env bash
# Start, stop, restart or check a Redis Sentinel from its config file.
#   manage_sentinel.sh start|stop|restart|status CONFIG PIDFILE
# The config must live in a writable directory: Sentinel rewrites it (by rename) as it learns.
# status exits 0 running, 1 dead with a stale pidfile, 3 not running (LSB). stop sends SHUTDOWN
# (authenticated with the config's requirepass, else as SENTINEL_USERNAME with SENTINEL_PASSWORD) and
# falls back to signals.
set -euo pipefail
# shellcheck source=scripts/common_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/common_env.sh"
LOGIN_USER="${SENTINEL_USERNAME:-}"
manage_main sentinel "${SENTINEL_HOSTS##*:}" "$SENTINEL_PASSWORD" "$@"
