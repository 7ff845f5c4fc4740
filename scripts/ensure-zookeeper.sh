#!/usr/bin/env bash
# Makes sure a ZooKeeper server (3.5+) and a JVM are available for the ZooKeeper tests,
# demo and bench. Tests start it standalone themselves (test/support/zookeeper.ts); no
# service needs to run. Order: $ZOOKEEPER_CLASSPATH, then Debian's package
# (/usr/share/java/zookeeper.jar), then (root on Debian/Ubuntu) apt-get.
set -euo pipefail

if [ -n "${ZOOKEEPER_CLASSPATH:-}" ]; then
  if command -v java >/dev/null 2>&1; then exit 0; fi
  echo "ensure-zookeeper: ZOOKEEPER_CLASSPATH is set but there is no 'java' on PATH" >&2
  exit 1
fi
if [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure-zookeeper: ZooKeeper not found, installing Debian's zookeeper package with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y zookeeper >/tmp/ensure-zookeeper-apt.log 2>&1; then
    apt-get update >>/tmp/ensure-zookeeper-apt.log 2>&1 || true
    apt-get install -y zookeeper >>/tmp/ensure-zookeeper-apt.log 2>&1 || {
      tail -n 20 /tmp/ensure-zookeeper-apt.log >&2
      echo "ensure-zookeeper: apt-get install failed (log above)" >&2
      exit 1
    }
  fi
  [ -f /usr/share/java/zookeeper.jar ] && command -v java >/dev/null 2>&1 && exit 0
fi

cat >&2 <<'MSG'
ensure-zookeeper: no ZooKeeper server found.
Install one of:
  - Debian/Ubuntu:  sudo apt-get install -y zookeeper
  - any Linux/macOS: a JDK 11+ and Apache ZooKeeper 3.5+ from zookeeper.apache.org; set
    ZOOKEEPER_CLASSPATH to its jars (e.g. "/opt/zookeeper/lib/*")
MSG
exit 1
