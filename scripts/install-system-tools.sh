#!/usr/bin/env bash
# Install the system tools the tests run, when they are missing: promtool (Debian package
# prometheus), amtool (prometheus-alertmanager) and PostgreSQL's initdb/pg_ctl (postgresql).
# Debian/Ubuntu: apt-get, through sudo when not root. Elsewhere: exit 1 naming the packages.
#
# Usage: scripts/install-system-tools.sh   (`make test` and `make tools` run it)
set -euo pipefail

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "error: the tests need promtool, amtool and PostgreSQL: install the Debian packages" \
    "${need[*]} or your system's equivalent, then run make test again" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "error: installing ${need[*]} (apt-get) needs root or sudo" >&2
    exit 1
  fi
  sudo=(sudo)
fi

echo "installing ${need[*]} (apt-get; the tests need them)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Each package starts its server (and PostgreSQL takes port 5432); the tests start their own
# on free ports, so stop the ones this script just installed.
for service in "${need[@]}"; do
  "${sudo[@]}" systemctl stop "$service" 2>/dev/null || "${sudo[@]}" service "$service" stop >/dev/null 2>&1 || true
done
