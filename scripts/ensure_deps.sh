#!/usr/bin/env bash
# Make sure the system tools the lab needs are there: redis-server and redis-cli (and the venv
# module). As root on Debian/Ubuntu they are installed with apt; elsewhere this says what to install.
set -euo pipefail

missing=()
command -v "${REDIS_SERVER_BIN:-redis-server}" >/dev/null 2>&1 || missing+=(redis-server)
command -v "${REDIS_CLI_BIN:-redis-cli}" >/dev/null 2>&1 || missing+=(redis-tools)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v shellcheck >/dev/null 2>&1 || [[ "${LAB_NEED_SHELLCHECK:-0}" != 1 ]] || missing+=(shellcheck)
((${#missing[@]} == 0)) && exit 0

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "ensure_deps: missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}; macOS: brew install redis)" >&2
exit 1
