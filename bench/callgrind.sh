#!/usr/bin/env bash
# callgrind.sh BENCH_TEST OUT.md counts the client's instructions per
# operation for raw pgx and evaldb, with valgrind's callgrind, and writes a
# markdown table to OUT.md. Instruction counts hold on a shared machine where
# times do not. run.sh calls it in its full pass (BENCH_CALLGRIND=0 skips it);
# BENCH_DATABASE_URL must name the seeded benchmark database.
#
# Each figure counts only what runs inside the contender's method
# (--toggle-collect='*pgxContender).PKRead' and so on): the client's work,
# the server's none. Two runs, of N1 and N2 operations, are subtracted so
# that the test binary's start, the connection and the warm-up cancel out:
# (collected(N2) - collected(N1)) / (N2 - N1).
set -euo pipefail
BIN=$1
OUT=$2
N1=${CALLGRIND_N1:-100}
N2=${CALLGRIND_N2:-1100}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }

collected() { # benchmark pattern, toggle glob, operations
	local n
	# Without asyncpreemptoff, callgrind aborts on Go's preemption signals.
	n=$(GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null --toggle-collect="$2" \
		"$BIN" -test.run '^$' -test.bench "$1" -test.benchtime="$3x" 2>&1 >/dev/null | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
	[ -n "$n" ] || { echo "callgrind.sh: no count for $1 ($2)" >&2; exit 1; }
	echo "$n"
}

per_op() { # benchmark pattern, toggle glob
	local a b
	a=$(collected "$1" "$2" "$N1")
	b=$(collected "$1" "$2" "$N2")
	echo $(((b - a) / (N2 - N1)))
}

{
	echo "| client instructions per operation (callgrind) | raw pgx | evaldb | evaldb / pgx |"
	echo "|---|---:|---:|---:|"
	for w in "PK read:BenchmarkPKRead:PKRead" "page of 100:BenchmarkPage:Page" "student + 20 metrics:BenchmarkStudent:Student"; do
		IFS=: read -r label bench method <<<"$w"
		echo "callgrind: $label" >&2
		p=$(per_op "^$bench/db=pgx\$" "*pgxContender).$method")
		e=$(per_op "^$bench/db=evaldb\$" "*evaldbContender).$method")
		printf '| %s | %s | %s | %s× |\n' "$label" "$p" "$e" "$(awk -v e="$e" -v p="$p" 'BEGIN { printf "%.2f", e / p }')"
	done
	c=$(per_op '^BenchmarkStudent/db=evaldb-cached$' '*evaldbContender).Student')
	printf '| student + 20 metrics, cached | – | %s | – |\n' "$c"
} >"$OUT"
cat "$OUT"
