#!/usr/bin/env bash
# ensure-deps.sh makes sure PostgreSQL server binaries (initdb, postgres,
# pg_ctl) and PgBouncer are installed, for the integration tests and the
# embedded database of cmd/evaldb. As root on Debian/Ubuntu it installs them
# with apt-get; otherwise it says exactly what to install.
#
#   scripts/ensure-deps.sh              PostgreSQL and PgBouncer (the tests)
#   scripts/ensure-deps.sh postgresql   PostgreSQL only (make run: the demo uses no PgBouncer)
set -euo pipefail
want_bouncer=1
case "${1:-}" in
"") ;;
postgresql) want_bouncer=0 ;;
*) echo "usage: $0 [postgresql]" >&2; exit 2 ;;
esac

have() {
  if [ -n "${PG_BINDIR:-}" ] && [ -x "$PG_BINDIR/initdb" ]; then return 0; fi
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && return 0
  done
  command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}

have_bouncer() {
  [ -n "${PGBOUNCER:-}" ] && [ -x "$PGBOUNCER" ] && return 0
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null 2>&1
}

missing=()
have || missing+=(postgresql)
if [ "$want_bouncer" = 1 ]; then have_bouncer || missing+=(pgbouncer); fi
if [ ${#missing[@]} = 0 ]; then exit 0; fi

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing with apt-get: ${missing[*]} (for the integration tests) ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # Debian starts a cluster on install where it can; evaldb runs its own.
  # Stop only the clusters that are online (pg_ctlcluster prints "Cluster is
  # not running." for the others).
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _; do
      if [ "$status" = online ]; then pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true; fi
    done
  fi
  have && { [ "$want_bouncer" = 0 ] || have_bouncer; } && exit 0
fi

cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, postgres) or PgBouncer are not installed.
Install them, then run the command again:
  Debian/Ubuntu:  sudo apt-get install postgresql pgbouncer
  Fedora:         sudo dnf install postgresql-server pgbouncer
  macOS:          brew install postgresql@15 pgbouncer
or point PG_BINDIR at a directory holding initdb and postgres (and PGBOUNCER at pgbouncer),
or set TEST_DATABASE_URL (tests) / DATABASE_URL (the command) to a server you have.
MSG
exit 1
