package repo

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseLSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0/0", 0, true},
		{"0/16B3748", 0x16B3748, true},
		{"16/B374D848", 0x16<<32 | 0xB374D848, true},
		{"FFFFFFFF/FFFFFFFF", ^uint64(0), true},
		{"", 0, false},
		{"0", 0, false},
		{"/1", 0, false},
		{"1/", 0, false},
		{"1/2/3", 0, false},
		{"g/1", 0, false},
		{"100000000/0", 0, false},
		{"-1/0", 0, false},
	} {
		got, err := parseLSN(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseLSN(%q) = %#x, %v; want %#x, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if tc.ok && formatLSN(got) != lowerHex(tc.in) {
			t.Errorf("formatLSN(parseLSN(%q)) = %q", tc.in, formatLSN(got))
		}
	}
}

func lowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func FuzzParseLSN(f *testing.F) {
	for _, s := range []string{"0/0", "16/B374D848", "1/", "x/y", "FFFFFFFF/FFFFFFFF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := parseLSN(s)
		if err != nil {
			return
		}
		back, err := parseLSN(formatLSN(v))
		if err != nil || back != v {
			t.Fatalf("parseLSN(formatLSN(%#x)) = %#x, %v", v, back, err)
		}
	})
}

func TestSplitReplicaURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"postgres://a/db", []string{"postgres://a/db"}},
		{"postgres://a/db,postgresql://b/db", []string{"postgres://a/db", "postgresql://b/db"}},
		{"postgres://a/db, postgres://b/db\n postgres://c/db", []string{"postgres://a/db", "postgres://b/db", "postgres://c/db"}},
		{"postgres://u@h1:5432,h2:5432/db,postgres://c/db", []string{"postgres://u@h1:5432,h2:5432/db", "postgres://c/db"}},
		{"postgres://a/db,", []string{"postgres://a/db"}},
	} {
		if diff := cmp.Diff(tc.want, SplitReplicaURLs(tc.in)); diff != "" {
			t.Errorf("SplitReplicaURLs(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestConfigFromLookupReplicaURLs(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		EnvDatabaseURL:    "postgres://p/db",
		EnvReplicaURLs:    "postgres://r1/db, postgres://r2/db",
		EnvAppEnvironment: "test",
	}
	cfg, err := ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"postgres://r1/db", "postgres://r2/db"}, cfg.ReplicaURLs); diff != "" {
		t.Errorf("ReplicaURLs mismatch (-want +got):\n%s", diff)
	}
	if got := cfg.Sources["ReplicaURLs"]; got != EnvReplicaURLs {
		t.Errorf("Sources[ReplicaURLs] = %q, want %q", got, EnvReplicaURLs)
	}
	delete(env, EnvReplicaURLs)
	if cfg, err = ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil || cfg.ReplicaURLs != nil {
		t.Errorf("without %s: ReplicaURLs = %v, %v; want nil", EnvReplicaURLs, cfg.ReplicaURLs, err)
	}
}

func TestReplicaOptionsResolve(t *testing.T) {
	t.Parallel()
	got, err := (*ReplicaOptions)(nil).resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := ReplicaOptions{MaxLag: DefaultReplicaMaxLag, PollInterval: DefaultReplicaPollInterval, CheckInterval: DefaultReplicaCheckInterval, MaxRetryInterval: DefaultReplicaMaxRetry}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolve(nil) mismatch (-want +got):\n%s", diff)
	}
	// The backoff's cap is never below its base, the check interval.
	if got, err := (&ReplicaOptions{CheckInterval: time.Minute}).resolve(); err != nil || got.MaxRetryInterval != time.Minute {
		t.Errorf("resolve(CheckInterval 1m).MaxRetryInterval = %s, %v; want 1m", got.MaxRetryInterval, err)
	}
	if _, err := (&ReplicaOptions{MaxLag: -time.Second}).resolve(); err == nil || err.Error() != "Config.Replicas.MaxLag must be >= 0 (got -1s); 0 means the default" {
		t.Errorf("resolve(MaxLag -1s) error = %v", err)
	}
}

func TestWALStateLag(t *testing.T) {
	t.Parallel()
	var w walState
	t0 := time.Unix(1000, 0)
	w.sample(t0, 100)
	w.sample(t0.Add(time.Second), 200)
	w.sample(t0.Add(1500*time.Microsecond+time.Second), 200) // no progress: ignored
	w.sample(t0.Add(2*time.Second), 300)
	now := t0.Add(3 * time.Second)
	for _, tc := range []struct {
		replay uint64
		want   time.Duration
	}{
		{50, 3 * time.Second},  // lacks what the primary had at t0
		{100, 2 * time.Second}, // has t0's, lacks t0+1s's
		{250, time.Second},
		{300, 0},
		{400, 0},
	} {
		if got := w.lag(now, tc.replay); got != tc.want {
			t.Errorf("lag(replay %d) = %s, want %s", tc.replay, got, tc.want)
		}
	}
	w.prune(200)
	if got := w.lag(now, 50); got != time.Second {
		t.Errorf("after prune(200): lag(50) = %s, want 1s (older samples dropped)", got)
	}
	if len(w.samples) != 1 {
		t.Errorf("after prune(200): %d samples, want 1", len(w.samples))
	}
}

// TestLSNGroup checks the coalescing rule: every caller gets the result of
// a fetch that started after it called, and concurrent callers share
// fetches.
func TestLSNGroup(t *testing.T) {
	t.Parallel()
	var g lsnGroup
	var started atomic.Uint64 // fetch sequence
	fetch := func() (uint64, error) {
		n := started.Add(1)
		time.Sleep(200 * time.Microsecond)
		return n, nil
	}
	const callers = 64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			before := started.Load() // fetches that had started before this call
			got, err := g.do(fetch)
			if err != nil || got <= before {
				t.Errorf("do() = %d, %v; want a fetch that started after the call (> %d)", got, err, before)
			}
		})
	}
	wg.Wait()
	if n := started.Load(); n == 0 || n > callers {
		t.Errorf("fetches = %d, want 1..%d", n, callers)
	}
	t.Logf("%d callers, %d fetches", callers, started.Load())
}
