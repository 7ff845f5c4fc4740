#!/usr/bin/env bash
# Makes sure an etcd server binary is available for tests, demo and bench.
# Order: $ETCD_BIN, then `etcd` on PATH, then (root on Debian/Ubuntu) apt-get.
set -euo pipefail

if [ -n "${ETCD_BIN:-}" ]; then
  if [ -x "$ETCD_BIN" ]; then exit 0; fi
  echo "ensure-etcd: ETCD_BIN=$ETCD_BIN is not an executable file" >&2
  exit 1
fi
if command -v etcd >/dev/null 2>&1 && command -v etcdctl >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-etcd: etcd not found, installing etcd-server and etcd-client with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y etcd-server etcd-client >/tmp/ensure-etcd-apt.log 2>&1; then
    apt-get update >>/tmp/ensure-etcd-apt.log 2>&1 || true
    apt-get install -y etcd-server etcd-client >>/tmp/ensure-etcd-apt.log 2>&1 || {
      tail -n 20 /tmp/ensure-etcd-apt.log >&2
      echo "ensure-etcd: apt-get install failed (log above)" >&2
      exit 1
    }
  fi
  # Debian's package may start a system etcd on the default ports; tests never use them.
  command -v etcd >/dev/null 2>&1 && exit 0
fi

cat >&2 <<'MSG'
ensure-etcd: no etcd server found.
Install one of:
  - Debian/Ubuntu:  sudo apt-get install -y etcd-server etcd-client
  - any Linux/macOS: download etcd v3.4+ from https://github.com/etcd-io/etcd/releases
    and put `etcd` and `etcdctl` on PATH, or set ETCD_BIN=/path/to/etcd
MSG
exit 1
