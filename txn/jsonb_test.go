package txn_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/aah/evaldb/txn"
)

// jsonbCases are JSON documents at the edges of what PostgreSQL's jsonb
// accepts: refuse is the SQLSTATE the server answers ("" when it accepts
// the document), says what Validate's problem must contain.
var jsonbCases = []struct {
	name, doc string
	refuse    string
	says      string
}{
	{"NUL", `{"k":"a\u0000b"}`, "22P05", `\u0000`},
	{"EscapedBackslashThenU0000", `{"k":"a\\u0000b"}`, "", ""},
	{"LoneHighSurrogate", `{"k":"\ud800"}`, "22P02", `high surrogate escape \ud800 at byte 6 without its low half`},
	{"HighSurrogateThenText", `{"k":"\ud83dx"}`, "22P02", "high surrogate"},
	{"TwoHighSurrogates", `["\ud83d\ud83d"]`, "22P02", "high surrogate"},
	{"HighSurrogateThenEscape", `["\ud83d\n"]`, "22P02", "high surrogate"},
	{"LoneLowSurrogate", `{"k":"x\udc00"}`, "22P02", `low surrogate escape \udc00 at byte 7`},
	{"LowThenHigh", `["\ude00\ud83d"]`, "22P02", "low surrogate"},
	{"SurrogateInKey", `{"\udfff":1}`, "22P02", "low surrogate"},
	{"SurrogatePair", `{"k":"\ud83d\ude00 \uD83D\uDE00"}`, "", ""},
	{"LargestIntegerPart", `{"k":1e131071}`, "", ""},
	{"LargestIntegerPartSpelledOut", `[9.9e131071]`, "", ""},
	{"IntegerPartTooLong", `{"k":1e131072}`, "22003", "more than 131072 digits before the decimal point"},
	{"IntegerPartTooLongByMantissa", `[10e131071]`, "22003", "before the decimal point"},
	{"NegativeTooLarge", `[-1e131072]`, "22003", "before the decimal point"},
	{"ExponentBeyondInt64", `[1e99999999999999999999]`, "22003", "before the decimal point"},
	{"ZeroWithHugeExponent", `[0e999999]`, "", ""},
	{"SmallestScale", `[1e-16383]`, "", ""},
	{"ScaleTooLarge", `{"k":1e-16384}`, "22003", "more than 16383 digits after the decimal point"},
	{"ScaleTooLargeByMantissa", `[1.5e-16383]`, "22003", "after the decimal point"},
	{"ScaleOfZero", `[0e-16384]`, "22003", "after the decimal point"},
	{"TinyExponentBeyondInt64", `[1e-99999999999999999999]`, "22003", "after the decimal point"},
	{"LongFraction", `[0.` + strings.Repeat("1", 16383) + `]`, "", ""},
	{"FractionTooLong", `[0.` + strings.Repeat("0", 16383) + `1]`, "22003", "after the decimal point"},
	{"LongInteger", `[1` + strings.Repeat("0", 131071) + `]`, "", ""},
	{"IntegerTooLong", `[1` + strings.Repeat("0", 131072) + `]`, "22003", "before the decimal point"},
	{"Depth10000", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), "", ""},
	{"Depth100000", strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), "54001", "more than 10000 deep"},
	{"NumbersInStringsAreText", `{"k":"1e999999 \\ud800"}`, "", ""},
}

// TestValidateAgreesWithJSONB sends each document to the server as jsonb:
// the server refuses exactly the ones Validate refuses, and Validate names
// the config field and what is wrong, before anything is sent.
func TestValidateAgreesWithJSONB(t *testing.T) {
	t.Parallel()
	pool, _ := setup(t)
	for _, tc := range jsonbCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ok bool
			err := pool.QueryRow(t.Context(), "SELECT $1::text::jsonb IS NOT NULL", tc.doc).Scan(&ok)
			var pgErr *pgconn.PgError
			switch {
			case tc.refuse == "" && err != nil:
				t.Fatalf("the server refuses the document, which the test expects it to accept: %v", err)
			case tc.refuse != "" && (!errors.As(err, &pgErr) || pgErr.Code != tc.refuse):
				t.Fatalf("the server answers %v, want SQLSTATE %s", err, tc.refuse)
			}
			run := makeRun(uuid.New(), 1, 1)
			run.Config = []byte(tc.doc)
			verr := txn.Validate(run)
			if tc.refuse == "" {
				if verr != nil {
					t.Errorf("Validate refuses what the server accepts: %v", verr)
				}
				return
			}
			var v *txn.ValidationError
			if !errors.As(verr, &v) || len(v.Problems) != 1 || v.Problems[0].Field != "config" || !strings.Contains(v.Problems[0].Message, tc.says) {
				t.Errorf("Validate = %v; want one problem with config saying %q", verr, tc.says)
			}
		})
	}
}

// normalisedConfig holds numbers that jsonb stores in another spelling:
// large and small exponents (printed back in full), 1.0 and 1E+2, -0,
// escapes, duplicate keys and key order.
const normalisedConfig = `{"z": 1e1000, "tiny": 1.5e-300, "one": 1.0, "hundred": 1E+2, "negzero": -0, "negzerof": -0.0,
	"big": 123456789012345678901234567890e-10, "s": "\u00e9\/", "dup": 1, "dup": 2, "a": [1e131071, 0e5]}`

// TestIdenticalRunWithNormalisedNumbers re-records a byte-identical run
// whose config jsonb normalises: it is found, not a conflict, both when
// the retry meets the recorded run and when the first COMMIT's answer was
// lost. It was a 409 (ErrRunConflict) for exponents over 999.
func TestIdenticalRunWithNormalisedNumbers(t *testing.T) {
	t.Parallel()
	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		pool, admin := setup(t)
		run := makeRun(uuid.New(), 20, 2)
		run.Config = []byte(normalisedConfig)
		if _, err := txn.RecordEvalRun(t.Context(), pool, run); err != nil {
			t.Fatalf("first RecordEvalRun: %v", err)
		}
		rec, err := txn.RecordEvalRun(t.Context(), pool, run)
		if err != nil || !rec.AlreadyRecorded {
			t.Fatalf("RecordEvalRun of the identical run = %+v, %v; want AlreadyRecorded", rec, err)
		}
		wantCounts(t, admin, tableCounts{1, 20, 2, 1})
		// A real difference is still one.
		changed := run
		changed.Config = []byte(strings.Replace(normalisedConfig, "1e1000", "1e999", 1))
		if _, err := txn.RecordEvalRun(t.Context(), pool, changed); !errors.Is(err, txn.ErrRunConflict) {
			t.Errorf("RecordEvalRun with 1e999 for 1e1000 = %v, want ErrRunConflict", err)
		}
	})
	t.Run("LostCommit", func(t *testing.T) {
		t.Parallel()
		pool, admin := setup(t)
		var commits atomic.Int32
		db := &faultDB{Pool: pool, commit: lostCommit(true, &commits)}
		run := makeRun(uuid.Nil, 20, 2)
		run.Config = []byte(normalisedConfig)
		rec, err := txn.RecordEvalRunWithOptions(t.Context(), db, run, fastRetries)
		if err != nil || !rec.AlreadyRecorded {
			t.Fatalf("RecordEvalRun after a lost COMMIT = %+v, %v; want the committed run found", rec, err)
		}
		wantCounts(t, admin, tableCounts{1, 20, 2, 1})
	})
}
