#!/usr/bin/env bash
# Start, stop, restart or check a redis-server from its config file.
#   manage_redis_server.sh start|stop|restart|status CONFIG PIDFILE
# status exits 0 running, 1 dead with a stale pidfile, 3 not running (LSB). stop sends SHUTDOWN
# (authenticated with the config's requirepass, else as REDIS_USERNAME with REDIS_PASSWORD) and falls
# back to SIGTERM, SIGKILL.
set -euo pipefail
# shellcheck source=scripts/common_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/common_env.sh"
LOGIN_USER="${REDIS_USERNAME:-}"
manage_main server "$REDIS_PORT" "$REDIS_PASSWORD" "$@"
