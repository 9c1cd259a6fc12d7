#!/bin/sh
# Runs a command with a throwaway PostgreSQL: a new cluster in a temporary
# directory, run by an unprivileged user (postgres when started as root),
# listening only on a Unix socket in that directory. YOUJU_PG_DSN tells the
# command how to reach it; the cluster is stopped and removed afterwards.
# Usage: scripts/with-postgresql.sh COMMAND [ARGS...]
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/initdb" ]; then
	echo "with-postgresql: $PGBIN/initdb not found (scripts/deps.sh installs postgresql)" >&2
	exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/youju-pg.XXXXXX")
as_owner() { "$@"; }
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	as_owner() { runuser -u postgres -- "$@"; }
fi

stop() {
	as_owner "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT INT TERM

as_owner "$PGBIN/initdb" -D "$dir/data" -A trust -U youju -E UTF8 --no-sync >/dev/null
as_owner "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
	-o "-k $dir -c listen_addresses= -c max_connections=200" start >/dev/null

YOUJU_PG_DSN="host=$dir user=youju dbname=postgres"
export YOUJU_PG_DSN
"$@"
