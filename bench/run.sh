#!/usr/bin/env bash
# run.sh runs evaldb's comparative benchmarks (issue 7) side by side on one
# PostgreSQL server and writes the comparison table.
#
#   bench/run.sh          full pass: Go benchmarks (raw pgx, evaldb, GORM, bun),
#                         Prisma 7, pgbench; writes out/ and out/table.md
#   bench/run.sh smoke    every Go benchmark once (-benchtime=1x), for CI
#
# Server: TEST_DATABASE_URL when set (a superuser URL; the database
# evaldb_bench is dropped and recreated on it), otherwise a throwaway cluster
# started here from the installed PostgreSQL binaries (initdb + pg_ctl on a
# private port and socket directory, test settings: fsync off) and removed on
# exit. Set BENCH_DURABLE=1 to keep fsync and synchronous_commit on.
#
# Knobs (environment): BENCH_COUNT (rounds of the Go suite, default 6),
# BENCH_TIME (Go -benchtime, default 1s), PRISMA_N (Prisma repetitions of
# each read, default 500), PRISMA_THROUGHPUT_MS (default 5000), PGBENCH_T
# (pgbench seconds per run, default 10), BENCH_OUT (default out), and
# BENCH_GO, BENCH_PRISMA, BENCH_PGBENCH, BENCH_CALLGRIND (0 skips that part; in smoke mode
# BENCH_PRISMA=1 adds a one-repetition Prisma pass).
set -euo pipefail
cd "$(dirname "$0")"

MODE=${1:-full}
GO=${GO:-go}
PGBIN=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
OUT=${BENCH_OUT:-out}
mkdir -p "$OUT"

as_pg=()
if [ "$(id -u)" = 0 ]; then as_pg=(runuser -u postgres --); fi

stop_cluster() {
	if [ -n "${PGTMP:-}" ]; then
		"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate -w stop >/dev/null 2>&1 || true
		rm -rf "$PGTMP"
	fi
}

start_cluster() {
	if [ ! -x "$PGBIN/initdb" ]; then
		echo "run.sh: no PostgreSQL server binaries (initdb) found: run 'make deps', set PG_BINDIR, or set TEST_DATABASE_URL" >&2
		exit 1
	fi
	PGTMP=$(mktemp -d /tmp/evaldb-bench.XXXXXX)
	trap stop_cluster EXIT
	chmod 755 "$PGTMP"
	mkdir "$PGTMP/sock"
	if [ ${#as_pg[@]} -gt 0 ]; then chown -R postgres: "$PGTMP"; fi
	"${as_pg[@]}" "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust --no-sync >"$PGTMP/initdb.log" 2>&1 ||
		{ cat "$PGTMP/initdb.log" >&2; exit 1; }
	local port
	for port in $(seq 55400 55499); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if [ "${BENCH_DURABLE:-0}" = 1 ]; then durability=""; fi
	"${as_pg[@]}" "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -o \
		"-p $port -k $PGTMP/sock -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=128MB $durability" \
		start >/dev/null || { cat "$PGTMP/server.log" >&2; exit 1; }
	TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
	echo "run.sh: throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PGTMP)" >&2
}

# prisma_setup installs the Prisma side (on a fresh clone, npm ci) and
# generates its client. npm's and prisma's output go to stderr: they must
# never end up in prisma.json. Any failure stops run.sh, saying what to do.
prisma_setup() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "run.sh: the Prisma benchmark needs Node.js (20 or later) and npm: install them, or set BENCH_PRISMA=0 to leave Prisma out" >&2
		exit 1
	fi
	(
		cd prisma
		if [ ! -d node_modules ]; then
			npm ci --no-audit --no-fund >&2 ||
				{ echo "run.sh: npm ci in bench/prisma failed (the npm registry must be reachable); or set BENCH_PRISMA=0" >&2; exit 1; }
		fi
		# Prisma 7's client needs no engine, but generate would download the
		# schema engine: any existing file stops it.
		PRISMA_SCHEMA_ENGINE_BINARY=${PRISMA_SCHEMA_ENGINE_BINARY:-/bin/true} npx prisma generate >&2 ||
			{ echo "run.sh: prisma generate failed in bench/prisma" >&2; exit 1; }
	) || exit 1
}

if [ -z "${TEST_DATABASE_URL:-}" ]; then start_cluster; fi
export TEST_DATABASE_URL
BENCH_DATABASE_URL=$($GO run ./cmd/benchseed)
export BENCH_DATABASE_URL

GOTEST=($GO test -run '^$' -bench . -benchmem)

case "$MODE" in
smoke)
	# Every test once and every benchmark once, so that none of them rots.
	$GO test -count=1 -run . -bench . -benchtime=1x .
	if [ "${BENCH_PRISMA:-0}" = 1 ]; then
		prisma_setup
		(cd prisma && DATABASE_URL=$BENCH_DATABASE_URL PRISMA_SMOKE=1 npx tsx bench.ts >/dev/null)
	fi
	exit 0
	;;
full) ;;
*)
	echo "usage: $0 [full|smoke]" >&2
	exit 2
	;;
esac

{
	echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//') × $(nproc)"
	echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
	echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "go: $($GO version)"
	echo "postgres: $(psql "$BENCH_DATABASE_URL" -Atc 'SHOW server_version' 2>/dev/null || "$PGBIN/postgres" --version)"
	echo "node: $(node --version 2>/dev/null || echo none)"
	echo "server settings: $(psql "$BENCH_DATABASE_URL" -Atc "SELECT string_agg(name || '=' || setting, ' ') FROM pg_settings WHERE name IN ('fsync','synchronous_commit','full_page_writes','shared_buffers')" 2>/dev/null)"
} | tee "$OUT/machine.txt"

if [ "${BENCH_GO:-1}" = 1 ]; then
	COUNT=${BENCH_COUNT:-6}
	echo "== Go benchmarks ($COUNT rounds, benchtime ${BENCH_TIME:-1s})" >&2
	# The suite runs COUNT times in a row rather than with -count=COUNT, so
	# that the contenders of one workload are measured minutes apart at most:
	# on a shared machine the load drifts, and -count would run all samples
	# of one contender before the next.
	$GO test -c -o "$OUT/bench.test" .
	: >"$OUT/go.txt"
	for i in $(seq "$COUNT"); do
		echo "-- round $i/$COUNT" >&2
		"$OUT/bench.test" -test.run '^$' -test.bench . -test.benchmem -test.benchtime="${BENCH_TIME:-1s}" \
			-test.timeout 60m | tee -a "$OUT/go.txt"
	done
	$GO tool -modfile=../tools/go.mod benchstat -col /db "$OUT/go.txt" >"$OUT/benchstat.txt"
fi

if [ "${BENCH_PGBENCH:-1}" = 1 ]; then
	T=${PGBENCH_T:-10}
	echo "== pgbench (10 connections, -M prepared, ${T}s each)" >&2
	PGBENCH_URL=$(sed -E 's#/evaldb_bench(\?|$)#/pgbench_ceiling\1#' <<<"$BENCH_DATABASE_URL")
	psql "$BENCH_DATABASE_URL" -qc 'DROP DATABASE IF EXISTS pgbench_ceiling' -c 'CREATE DATABASE pgbench_ceiling'
	"$PGBIN/pgbench" -i -s 10 -q "$PGBENCH_URL" >/dev/null 2>&1
	"$PGBIN/pgbench" -n -S -M prepared -c 10 -j 2 -T "$T" "$PGBENCH_URL" >"$OUT/pgbench-S.txt" 2>&1
	"$PGBIN/pgbench" -n -M prepared -c 10 -j 2 -T "$T" -f pgbench/pk.sql "$BENCH_DATABASE_URL" >"$OUT/pgbench-pk.txt" 2>&1
	"$PGBIN/pgbench" -n -M prepared -c 10 -j 2 -T "$T" -f pgbench/mix.sql "$BENCH_DATABASE_URL" >"$OUT/pgbench-mix.txt" 2>&1
	grep -H 'tps =' "$OUT"/pgbench-*.txt >&2
fi

# The table gets a column for each part that ran; benchtable fails when a
# part's output cannot be read, so a column is never silently "not measured".
TABLE_ARGS=()
if [ "${BENCH_GO:-1}" = 1 ]; then TABLE_ARGS+=(-go "$OUT/go.txt"); fi
if [ "${BENCH_PGBENCH:-1}" = 1 ]; then
	TABLE_ARGS+=(-pgbench-s "$OUT/pgbench-S.txt" -pgbench-pk "$OUT/pgbench-pk.txt" -pgbench-mix "$OUT/pgbench-mix.txt")
fi

if [ "${BENCH_PRISMA:-1}" = 1 ]; then
	echo "== Prisma" >&2
	prisma_setup
	# Only bench.ts's JSON goes to stdout, and so into prisma.json.
	(cd prisma && DATABASE_URL=$BENCH_DATABASE_URL npx tsx bench.ts) >"$OUT/prisma.json" ||
		{ echo "run.sh: the Prisma benchmark failed (its output: $OUT/prisma.json)" >&2; exit 1; }
	node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$OUT/prisma.json" ||
		{ echo "run.sh: $OUT/prisma.json is not the JSON bench.ts writes" >&2; exit 1; }
	TABLE_ARGS+=(-prisma "$OUT/prisma.json")
fi

if [ "${BENCH_CALLGRIND:-1}" = 1 ]; then
	echo "== callgrind: client instructions per operation, raw pgx and evaldb" >&2
	[ -x "$OUT/bench.test" ] || $GO test -c -o "$OUT/bench.test" .
	./callgrind.sh "$OUT/bench.test" "$OUT/callgrind.md"
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"
$GO run ./cmd/benchtable "${TABLE_ARGS[@]}" | tee "$OUT/table.md"
if [ "${BENCH_CALLGRIND:-1}" = 1 ]; then
	{ echo; cat "$OUT/callgrind.md"; } | tee -a "$OUT/table.md"
fi
