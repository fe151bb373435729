#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, in a directory of its own, on a free loopback port.
#   postgres.sh up DIR      initdb + start; prints the URL (also in DIR/url)
#   postgres.sh stop DIR    fast shutdown (the data stays: `start` brings it back on the same port)
#   postgres.sh start DIR
#   postgres.sh down DIR    stop and remove DIR
# Run as root (CI), the server runs as the `postgres` user, which PostgreSQL requires; its files then live in a
# directory of their own under /tmp that user can reach (DIR may be inside a private one), named in DIR/home.
set -euo pipefail

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: PostgreSQL server binaries not found under /usr/lib/postgresql (scripts/setup.sh installs postgresql-15)" >&2
  exit 1
fi
cmd=${1:?usage: postgres.sh up|stop|start|down DIR}
dir=${2:?usage: postgres.sh up|stop|start|down DIR}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

home() { cat "$dir/home"; }

pg_start() {
  local port h
  port=$(cat "$dir/port")
  h=$(home)
  as_owner "$bin/pg_ctl" -D "$h/data" -l "$h/log" -w -t 30 \
    -o "-p $port -k $h -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null
}

case "$cmd" in
  up)
    if [ -f "$dir/home" ]; then rm -rf "$(home)"; fi
    rm -rf "$dir"
    mkdir -p "$dir"
    h=$(mktemp -d /tmp/fc25-pg.XXXXXX)
    chmod 755 "$h"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$h"; fi
    echo "$h" >"$dir/home"
    as_owner "$bin/initdb" -D "$h/data" -U fc25 --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
    for _ in 1 2 3 4 5 6 7 8; do
      port=$(( 20000 + RANDOM % 30000 ))
      echo "$port" >"$dir/port"
      if pg_start 2>/dev/null; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U fc25 fc25
        echo "postgresql://fc25@127.0.0.1:$port/fc25" | tee "$dir/url"
        exit 0
      fi
    done
    echo "postgres.sh: PostgreSQL did not start (log: $h/log)" >&2
    cat "$h/log" >&2 || true
    exit 1
    ;;
  start) pg_start ;;
  stop) as_owner "$bin/pg_ctl" -D "$(home)/data" -m fast -w stop >/dev/null ;;
  down)
    if [ -f "$dir/home" ]; then
      h=$(home)
      if [ -d "$h/data" ]; then as_owner "$bin/pg_ctl" -D "$h/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
      rm -rf "$h"
    fi
    rm -rf "$dir"
    ;;
  *) echo "postgres.sh: unknown command $cmd" >&2; exit 2 ;;
esac
