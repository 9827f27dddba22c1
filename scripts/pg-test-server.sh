#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, listening on 127.0.0.1 only.
#   pg-test-server.sh start DIR    initdb into DIR (as the postgres user when run as root),
#                                  start it on a free port, print its postgres:// URL
#   pg-test-server.sh stop DIR     stop it (the data stays, for `resume`)
#   pg-test-server.sh resume DIR   start it again on the same port
# With TBS_PG_TLS=1, `start` also makes a test CA (DIR/ca.pem) and a server certificate it
# signed for 127.0.0.1 and localhost (openssl CLI), and the server accepts TCP clients only
# over TLS.
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
  local port=$1 tls=""
  if [ -f "$dir/server.key" ]; then
    tls="-c ssl=on -c ssl_cert_file=$dir/server.pem -c ssl_key_file=$dir/server.key"
  fi
  as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $dir -c fsync=$(cat "$dir/fsync") -c max_connections=300 $tls" \
    start >/dev/null
}

# A CA and a server certificate it signed (rustls wants a real chain: a self-signed server
# certificate marked CA is refused as an end-entity certificate).
make_certificates() {
  local d=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=tbsecrets-test-ca \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=localhost \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  chmod 0600 "$d/server.key"
  if [ "$(id -u)" = 0 ]; then chown postgres "$d/server.key" "$d/server.pem"; fi
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
    # Tests run without flushes (fast); TBS_PG_FSYNC=on gives a durable server (benchmarks).
    echo "${TBS_PG_FSYNC:-off}" > "$dir/fsync"
    if [ "${TBS_PG_TLS:-0}" = 1 ]; then
      make_certificates "$dir"
      # TCP clients must use TLS: a connection that succeeds was encrypted.
      printf 'local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n' \
        >"$dir/data/pg_hba.conf"
    fi
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
