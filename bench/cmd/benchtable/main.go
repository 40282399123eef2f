// Command benchtable puts the Go benchmarks, the Prisma script and pgbench
// side by side: it reads `go test -bench` output (any -count), Prisma's
// JSON (bench/prisma/bench.ts) and pgbench's throughput figures, and prints
// Markdown tables of medians and the goals of issue 7 with their verdicts.
//
//	benchtable -go out/go.txt -prisma out/prisma.json \
//	    -pgbench-s out/pgbench-S.txt -pgbench-pk out/pgbench-pk.txt -pgbench-mix out/pgbench-mix.txt
//
// Missing inputs leave their columns empty ("–").
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// samples maps benchmark name (without "/db=…" and the -N suffix) → db → unit → values.
type samples map[string]map[string]map[string][]float64

func (s samples) add(bench, db, unit string, v float64) {
	if s[bench] == nil {
		s[bench] = map[string]map[string][]float64{}
	}
	if s[bench][db] == nil {
		s[bench][db] = map[string][]float64{}
	}
	s[bench][db][unit] = append(s[bench][db][unit], v)
}

// median returns the median of bench/db/unit, or NaN.
func (s samples) median(bench, db, unit string) float64 {
	vs := s[bench][db][unit]
	if len(vs) == 0 {
		return math.NaN()
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	if n := len(vs); n%2 == 1 {
		return vs[n/2]
	} else {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
}

var lineRE = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func readGo(r io.Reader, s samples) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		name, db := m[1], ""
		if i := strings.Index(name, "/db="); i >= 0 {
			name, db = name[:i]+name[i+len("/db=")+strings.IndexByte(name[i+len("/db="):]+"/", '/'):], name[i+len("/db="):]
			if j := strings.IndexByte(db, '/'); j >= 0 {
				db = db[:j]
			}
		}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return fmt.Errorf("%q: %w", sc.Text(), err)
			}
			s.add(name, db, f[i+1], v)
		}
	}
	return sc.Err()
}

type prismaDoc struct {
	Node    string `json:"node"`
	Prisma  string `json:"prisma"`
	Timings []struct {
		Name     string  `json:"name"`
		N        int     `json:"n"`
		MedianNs float64 `json:"median_ns"`
		RowsPerS float64 `json:"rows_per_s"`
	} `json:"timings"`
	Throughput []struct {
		Name      string  `json:"name"`
		ReadsPerS float64 `json:"reads_per_s"`
	} `json:"throughput"`
}

func readPrisma(path string, s samples) (*prismaDoc, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d prismaDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, t := range d.Timings {
		s.add("Benchmark"+t.Name, "prisma", "ns/op", t.MedianNs)
		if t.RowsPerS > 0 {
			s.add("Benchmark"+t.Name, "prisma", "rows/s", t.RowsPerS)
		}
	}
	for _, t := range d.Throughput {
		s.add("Benchmark"+t.Name, "prisma", "reads/s", t.ReadsPerS)
	}
	return &d, nil
}

var tpsRE = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// readPgbench returns pgbench's tps, or NaN when path is "" (pgbench was
// not run). A file given that holds no tps line stops benchtable.
func readPgbench(path string) float64 {
	if path == "" {
		return math.NaN()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		fatal(fmt.Errorf("pgbench figures: %w", err))
	}
	m := tpsRE.FindSubmatch(b)
	if m == nil {
		fatal(fmt.Errorf("pgbench figures: %s holds no tps line (pgbench failed?):\n%.500s", path, b))
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

func dur(ns float64) string {
	switch {
	case math.IsNaN(ns):
		return "–"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.2f s", ns/1e9)
}

func num(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	if v >= 100 {
		return commas(int64(math.Round(v)))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func commas(n int64) string {
	s := strconv.FormatInt(n, 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

var dbs = []string{"pgx", "evaldb", "evaldb-cached", "evaldb-view", "gorm", "bun", "prisma"}

func main() {
	goPath := flag.String("go", "", "go test -bench output")
	prismaPath := flag.String("prisma", "", "bench/prisma JSON")
	pgS := flag.String("pgbench-s", "", "pgbench -S output")
	pgPK := flag.String("pgbench-pk", "", "pgbench output, pk.sql script")
	pgMix := flag.String("pgbench-mix", "", "pgbench output, mix.sql script (3 reads per transaction)")
	flag.Parse()

	s := samples{}
	if *goPath != "" {
		f, err := os.Open(*goPath)
		if err != nil {
			fatal(err)
		}
		if err := readGo(f, s); err != nil {
			fatal(err)
		}
		f.Close()
	}
	var pd *prismaDoc
	if *prismaPath != "" {
		var err error
		if pd, err = readPrisma(*prismaPath, s); err != nil {
			// A file asked for must be read: a table that silently says "not
			// measured" hides a broken run.
			fatal(fmt.Errorf("the Prisma figures: %w", err))
		}
	}
	if pd != nil {
		fmt.Printf("Prisma %s on Node %s.\n\n", pd.Prisma, pd.Node)
	}

	// Latency table: median per operation.
	fmt.Println("| Workload | " + strings.Join(dbs, " | ") + " |")
	fmt.Println("|---" + strings.Repeat("|---:", len(dbs)) + "|")
	rows := []struct{ label, bench string }{
		{"1. PK read of one eval run", "BenchmarkPKRead"},
		{"2. page of 100 results", "BenchmarkPage"},
		{"3. student + 20 metrics (include)", "BenchmarkStudent"},
		{"4. record run, 10 results", "BenchmarkRecordRun/results=10"},
		{"4. record run, 100 results", "BenchmarkRecordRun/results=100"},
		{"4. record run, 1,000 results", "BenchmarkRecordRun/results=1000"},
		{"4. record run, 10,000 results", "BenchmarkRecordRun/results=10000"},
	}
	for _, r := range rows {
		cells := []string{r.label}
		for _, db := range dbs {
			cells = append(cells, dur(s.median(r.bench, db, "ns/op")))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}
	fmt.Println()
	fmt.Println("Allocations per operation (Go contenders):")
	fmt.Println()
	fmt.Println("| Workload | " + strings.Join(dbs[:len(dbs)-1], " | ") + " |")
	fmt.Println("|---" + strings.Repeat("|---:", len(dbs)-1) + "|")
	for _, r := range rows {
		cells := []string{r.label}
		for _, db := range dbs[:len(dbs)-1] { // the Go contenders: all but prisma
			cells = append(cells, num(s.median(r.bench, db, "allocs/op")))
		}
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}

	sTPS, pkTPS, mixTPS := readPgbench(*pgS), readPgbench(*pgPK), 3*readPgbench(*pgMix)
	fmt.Println()
	fmt.Println("Workload 5, reads per second, 64 concurrent callers on a pool of 10 (pgbench: 10 connections, -M prepared):")
	fmt.Println()
	fmt.Println("| Reads | " + strings.Join(dbs, " | ") + " | pgbench (same SQL) | pgbench -S |")
	fmt.Println("|---" + strings.Repeat("|---:", len(dbs)+2) + "|")
	for _, r := range []struct {
		label, bench string
		ceiling      float64
		s            float64
	}{
		{"mix of reads 1–3", "BenchmarkThroughput/read=mix", mixTPS, math.NaN()},
		{"PK read only", "BenchmarkThroughput/read=pk", pkTPS, sTPS},
	} {
		cells := []string{r.label}
		for _, db := range dbs {
			cells = append(cells, num(s.median(r.bench, db, "reads/s")))
		}
		cells = append(cells, num(r.ceiling), num(r.s))
		fmt.Println("| " + strings.Join(cells, " | ") + " |")
	}

	// Goals of issue 7.
	fmt.Println()
	fmt.Println("| Goal (issue 7) | Measured | Verdict |")
	fmt.Println("|---|---|---|")
	goal := func(name, measured string, ok bool, known bool) {
		v := "met"
		switch {
		case !known:
			v, measured = "not measured", "–"
		case !ok:
			v = "**missed**"
		}
		fmt.Printf("| %s | %s | %s |\n", name, measured, v)
	}
	ratio := func(a, b float64) float64 { return a / b }
	pk := ratio(s.median("BenchmarkPKRead", "evaldb", "ns/op"), s.median("BenchmarkPKRead", "pgx", "ns/op"))
	goal("W1: evaldb ≤ 5% slower than raw pgx", fmt.Sprintf("%+.1f%%", (pk-1)*100), pk <= 1.05, !math.IsNaN(pk))
	po := s.median("BenchmarkOverhead/read=pk", "", "evaldb-vs-pgx-%")
	goal("W1, paired (BenchmarkOverhead)", fmt.Sprintf("%+.1f%%", po), po <= 5, !math.IsNaN(po))
	pg := ratio(s.median("BenchmarkPage", "evaldb", "ns/op"), s.median("BenchmarkPage", "pgx", "ns/op"))
	goal("W2: evaldb ≤ 10% slower than raw pgx", fmt.Sprintf("%+.1f%%", (pg-1)*100), pg <= 1.10, !math.IsNaN(pg))
	pgo := s.median("BenchmarkOverhead/read=page", "", "evaldb-vs-pgx-%")
	goal("W2, paired (BenchmarkOverhead)", fmt.Sprintf("%+.1f%%", pgo), pgo <= 10, !math.IsNaN(pgo))
	cns, cal := s.median("BenchmarkStudent", "evaldb-cached", "ns/op"), s.median("BenchmarkStudent", "evaldb-cached", "allocs/op")
	goal("W3 cached: ≤ 0.5 µs and ≤ 1 allocation", fmt.Sprintf("%s, %s allocs", dur(cns), num(cal)), cns <= 500 && cal <= 1, !math.IsNaN(cns))
	vns, val := s.median("BenchmarkStudent", "evaldb-view", "ns/op"), s.median("BenchmarkStudent", "evaldb-view", "allocs/op")
	goal("W3 cached through Repo.Views(): ≤ 0.5 µs and ≤ 1 allocation", fmt.Sprintf("%s, %s allocs", dur(vns), num(val)), vns <= 500 && val <= 1, !math.IsNaN(vns))
	pr := ratio(s.median("BenchmarkStudent", "prisma", "ns/op"), cns)
	goal("W3 cached: ≥ 300× faster than Prisma", fmt.Sprintf("%s×", num(pr)), pr >= 300, !math.IsNaN(pr))
	r1k := s.median("BenchmarkRecordRun/results=1000", "evaldb", "ns/op")
	goal("W4: 1,000 results in ≤ 15 ms", dur(r1k), r1k <= 15e6, !math.IsNaN(r1k))
	p1k := ratio(s.median("BenchmarkRecordRun/results=1000", "prisma", "ns/op"), r1k)
	goal("W4: 1,000 results ≥ 5× faster than Prisma's $transaction", fmt.Sprintf("%s×", num(p1k)), p1k >= 5, !math.IsNaN(p1k))
	rows10k := 10000 / (s.median("BenchmarkRecordRun/results=10000", "evaldb", "ns/op") / 1e9)
	goal("W4: 10,000 results at ≥ 100,000 rows/s", num(rows10k)+" rows/s", rows10k >= 100000, !math.IsNaN(rows10k))
	tm := ratio(s.median("BenchmarkThroughput/read=mix", "evaldb", "reads/s"), mixTPS)
	goal("W5: ≥ 85% of pgbench's ceiling (mix, same SQL)", fmt.Sprintf("%.0f%%", tm*100), tm >= 0.85, !math.IsNaN(tm))
	tp := ratio(s.median("BenchmarkThroughput/read=pk", "evaldb", "reads/s"), pkTPS)
	goal("W5: ≥ 85% of pgbench's ceiling (PK read, same SQL)", fmt.Sprintf("%.0f%%", tp*100), tp >= 0.85, !math.IsNaN(tp))
	ts := ratio(s.median("BenchmarkThroughput/read=pk", "evaldb", "reads/s"), sTPS)
	goal("W5: ≥ 85% of `pgbench -S` (pgbench_accounts)", fmt.Sprintf("%.0f%%", ts*100), ts >= 0.85, !math.IsNaN(ts))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "benchtable:", err)
	os.Exit(1)
}
