#!/usr/bin/env bash
# callgrind-own.sh BENCH_TEST BENCH TOGGLE counts, with valgrind's callgrind,
# the instructions per operation run inside the method TOGGLE (a
# --toggle-collect glob) of benchmark BENCH, in total and in evaldb's own
# code: the functions of repo, cachewrap, gen, dberr and querymeta, with what
# the compiler inlined into them. Functions are told by their symbols, not
# their files: Go's line tables put some of a generic function's
# instructions in the files it inlined from. Two runs, of N1 and N2
# operations, are subtracted, as in callgrind.sh. BENCH_DATABASE_URL must
# name the seeded benchmark database. Example:
#
#	bench/callgrind-own.sh ./bench.test '^BenchmarkStudent/db=evaldb-cached$' '*evaldbContender).Student'
set -euo pipefail
BIN=$1
BENCH=$2
TOGGLE=$3
N1=${CALLGRIND_N1:-1000}
N2=${CALLGRIND_N2:-11000}
command -v valgrind >/dev/null || { echo "callgrind-own.sh: valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for n in "$N1" "$N2"; do
	# Without asyncpreemptoff, callgrind aborts on Go's preemption signals.
	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/$n.out" --toggle-collect="$TOGGLE" \
		"$BIN" -test.run '^$' -test.bench "$BENCH" -test.benchtime="${n}x" >/dev/null 2>&1
done
count() { # out file -> "total own"
	callgrind_annotate --inclusive=no --auto=no --threshold=100 "$1" | awk '
		/PROGRAM TOTALS/ { t = $1; gsub(",", "", t) }
		/file:function/ { p = 1; next }
		p && NF >= 2 { n = $1; gsub(",", "", n); if ($0 ~ /:github\.com\/aah\/evaldb\/(repo|cachewrap|gen|dberr|internal\/dberr|querymeta)\./) s += n }
		END { print t + 0, s + 0 }'
}
read -r t1 o1 <<<"$(count "$tmp/$N1.out")"
read -r t2 o2 <<<"$(count "$tmp/$N2.out")"
echo "instructions per operation: total $(((t2 - t1) / (N2 - N1))), evaldb's own $(((o2 - o1) / (N2 - N1)))"
