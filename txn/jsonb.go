package txn

import (
	"fmt"
	"strconv"
	"strings"
)

// What PostgreSQL's jsonb input refuses in a document that is valid JSON,
// measured on PostgreSQL 15 (TestValidateAgreesWithJSONB checks each rule
// against the server the tests run on):
//   - \u0000: "unsupported Unicode escape sequence" (22P05 with a text
//     parameter, 22P02 otherwise);
//   - a lone UTF-16 surrogate escape: a high half (\ud800-\udbff) not
//     followed by a low one, or a low half (\udc00-\udfff) alone (22P02);
//   - a number whose value has more than jsonbMaxIntDigits digits before the
//     decimal point, or whose scale (digits after the point once the
//     exponent is applied, max(0, fraction digits - exponent)) exceeds
//     jsonbMaxScale: "value overflows numeric format" (22003);
//   - arrays and objects nested deeper than jsonbMaxDepth: the parser
//     recurses and hits max_stack_depth (54001) a little past 10,000 levels
//     at the default 2 MB; encoding/json refuses past 10,000 too.
const (
	jsonbMaxIntDigits = 131072 // NUMERIC_WEIGHT_MAX+1 base-10000 digits
	jsonbMaxScale     = 16383  // NUMERIC_DSCALE_MAX
	jsonbMaxDepth     = 10000
)

// jsonbProblem returns what jsonb would refuse in b, a JSON document, or
// "". It never panics on invalid JSON (whose problems encoding/json
// reports). It scans the raw bytes, as encoding/json turns surrogate escapes
// into U+FFFD and numbers into float64 before anyone could look.
func jsonbProblem(b []byte) string {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			j, msg := jsonbString(b, i)
			if msg != "" {
				return msg
			}
			i = j
		case c == '[' || c == '{':
			if depth++; depth > jsonbMaxDepth {
				return fmt.Sprintf("nests arrays and objects more than %d deep, past what PostgreSQL's jsonb parser accepts (its stack runs out); flatten it", jsonbMaxDepth)
			}
		case c == ']' || c == '}':
			depth--
		case c == '-' || (c >= '0' && c <= '9'):
			j := i
			for j < len(b) && strings.IndexByte("+-0123456789.eE", b[j]) >= 0 {
				j++
			}
			if msg := jsonbNumber(string(b[i:j])); msg != "" {
				return msg
			}
			i = j - 1
		}
	}
	return ""
}

// jsonbString checks the string starting at b[i] (a quote) and returns the
// index of its closing quote.
func jsonbString(b []byte, i int) (int, string) {
	highAt := -1 // offset of a high surrogate escape waiting for its low half
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '"':
			if highAt >= 0 {
				return j, loneHigh(b, highAt)
			}
			return j, ""
		case '\\':
			if j+1 >= len(b) {
				return len(b), "" // invalid JSON: encoding/json says so
			}
			if b[j+1] != 'u' {
				if highAt >= 0 {
					return j, loneHigh(b, highAt)
				}
				j++
				continue
			}
			if j+6 > len(b) {
				return len(b), ""
			}
			cp, err := strconv.ParseUint(string(b[j+2:j+6]), 16, 32)
			if err != nil {
				return len(b), ""
			}
			switch {
			case cp == 0:
				return j, `holds \u0000, which PostgreSQL's jsonb refuses ("unsupported Unicode escape sequence"); remove it`
			case highAt >= 0 && cp >= 0xDC00 && cp <= 0xDFFF:
				highAt = -1
			case highAt >= 0:
				return j, loneHigh(b, highAt)
			case cp >= 0xD800 && cp <= 0xDBFF:
				highAt = j
			case cp >= 0xDC00 && cp <= 0xDFFF:
				return j, fmt.Sprintf(`holds the lone UTF-16 low surrogate escape \u%s at byte %d, which is no character and which PostgreSQL's jsonb refuses; escape the whole character or send it as UTF-8`, b[j+2:j+6], j)
			}
			j += 5
		default:
			if highAt >= 0 {
				return j, loneHigh(b, highAt)
			}
		}
	}
	return len(b), ""
}

func loneHigh(b []byte, at int) string {
	return fmt.Sprintf(`holds the UTF-16 high surrogate escape \u%s at byte %d without its low half, which PostgreSQL's jsonb refuses; escape the whole character (such as \ud83d\ude00) or send it as UTF-8`, b[at+2:at+6], at)
}

// decimal is a JSON number taken apart: its significant digits (no leading
// or trailing zeros; "" for zero), the power of ten of the last one, and
// the scale jsonb's numeric gives it.
type decimal struct {
	neg    bool
	digits string
	exp    int64 // value = digits × 10^exp
	scale  int64 // max(0, fraction digits - exponent)
}

// parseDecimal takes apart a valid JSON number. ok is false for an
// exponent beyond int64, which is out of jsonb's range anyway.
func parseDecimal(s string) (d decimal, ok bool) {
	if strings.HasPrefix(s, "-") {
		d.neg, s = true, s[1:]
	}
	mant, expStr, hasExp := strings.Cut(strings.ToLower(s), "e")
	var e int64
	if hasExp {
		var err error
		if e, err = strconv.ParseInt(strings.TrimPrefix(expStr, "+"), 10, 64); err != nil {
			return d, false
		}
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	d.scale = max(0, int64(len(frac))-e)
	digits := strings.TrimLeft(intPart+frac, "0")
	e -= int64(len(frac))
	trimmed := strings.TrimRight(digits, "0")
	e += int64(len(digits) - len(trimmed))
	d.digits, d.exp = trimmed, e
	if d.digits == "" {
		d.neg, d.exp = false, 0 // -0 is 0
	}
	return d, true
}

// jsonbNumber checks a valid JSON number against jsonb's numeric range.
func jsonbNumber(s string) string {
	d, ok := parseDecimal(s)
	intDigits := int64(0)
	if ok && d.digits != "" {
		intDigits = int64(len(d.digits)) + d.exp // digits before the point
	}
	if !ok { // an exponent beyond int64: too large, or too small
		if strings.Contains(strings.ToLower(s), "e-") {
			d.scale = jsonbMaxScale + 1
		} else {
			intDigits = jsonbMaxIntDigits + 1
		}
	}
	switch {
	case intDigits > jsonbMaxIntDigits:
		return fmt.Sprintf("holds the number %s, which has more than %d digits before the decimal point: out of the range of PostgreSQL's jsonb (numeric); store it as a string",
			truncate(s), jsonbMaxIntDigits)
	case d.scale > jsonbMaxScale:
		return fmt.Sprintf("holds the number %s, which has more than %d digits after the decimal point: out of the range of PostgreSQL's jsonb (numeric); round it or store it as a string",
			truncate(s), jsonbMaxScale)
	}
	return ""
}

// canonicalNumber spells a JSON number so that two spellings of one value
// (1, 1.0, 10e-1, 1E+0; 0 and -0; 1e1000 and 1 followed by 1,000 zeros, as
// jsonb prints it back) are the same string: jsonb compares numbers by
// value, and so must a comparison with what it stored.
func canonicalNumber(s string) string {
	d, ok := parseDecimal(s)
	if !ok {
		return s
	}
	if d.digits == "" {
		return "0"
	}
	sign := ""
	if d.neg {
		sign = "-"
	}
	return sign + d.digits + "e" + strconv.FormatInt(d.exp, 10)
}
