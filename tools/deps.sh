#!/usr/bin/env bash
# Makes sure prometheus and promtool 2.42 or newer are on PATH for the
# end-to-end and rules tests: installs the Debian package when missing and
# running as root on Debian or Ubuntu, and says what to do otherwise.
set -euo pipefail
min=2.42
have() { command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; }
version() { prometheus --version 2>&1 | sed -n 's/^prometheus, version \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p'; }
new_enough() { [ "$(printf '%s\n%s\n' "$min" "$1" | sort -V | head -n1)" = "$min" ]; }

if ! have; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "deps: installing the Debian prometheus package"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
  else
    echo "deps: prometheus and promtool $min or newer are required on PATH for the end-to-end tests;" >&2
    echo "      on Debian 12 or Ubuntu 24.04 run as root: apt-get install prometheus" >&2
    exit 1
  fi
fi
v=$(version)
if [ -z "$v" ] || ! new_enough "$v"; then
  echo "deps: prometheus ${v:-of unknown version} is older than $min, which the end-to-end tests need" >&2
  echo "      (its remote-write receiver). Older Debian and Ubuntu releases package an older one:" >&2
  echo "      install a release from prometheus.io/download and put prometheus and promtool on PATH." >&2
  exit 1
fi
echo "deps: prometheus $v and promtool found"
