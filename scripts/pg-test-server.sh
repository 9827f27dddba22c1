#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#   pg-test-server.sh start DIR    initdb into DIR (as the postgres user when run as root),
#                                  start it on a free port, print its postgres:// URL
#   pg-test-server.sh stop DIR     stop it (the data stays, for `resume`)
#   pg-test-server.sh resume DIR   start it again on the same port
set -euo pipefail
cmd=${1:?usage: pg-test-server.sh start|stop|resume DIR}
dir=${2:?usage: pg-test-server.sh start|stop|resume DIR}

bindir=${TBS_PG_BINDIR:-}
if [ -z "$bindir" ]; then
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
  bindir=$(dirname "$(command -v initdb)")
fi
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ] || [ ! -x "$bindir/pg_ctl" ]; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with" >&2
  echo "  apt-get update && apt-get install -y postgresql-15" >&2
  echo "or point TBS_PG_BINDIR at their directory." >&2
  exit 1
fi

# initdb refuses to run as root: use the postgres account then.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_server() {
  local port=$1
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c max_connections=300" \
    start >/dev/null
}

case $cmd in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      chown postgres "$dir"
      # The postgres account must be able to reach DIR.
      chmod a+x "$(dirname "$dir")"
    fi
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bindir/initdb" -D "$dir/data" -U tbs -A trust -E UTF8 --no-sync >/dev/null
    echo "$port" > "$dir/port"
    start_server "$port"
    echo "postgres://tbs@127.0.0.1:$port/postgres"
    ;;
  stop)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  resume)
    start_server "$(cat "$dir/port")"
    ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
