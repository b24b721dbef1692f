package pyjson_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/papyra-compact/papyra-compact/backends/internal/edges"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// The reference below decodes with encoding/json, which agrees with
// CPython's json module on pure-ASCII text except for NaN/Infinity (Go
// rejects them), lone surrogate escapes (Go decodes them to U+FFFD, which
// also merges distinct keys), integers over 4300 digits (CPython raises
// ValueError) and nesting depth (different limits). Inputs with any of
// these are only checked for invariants.

var (
	surrogateEscape = regexp.MustCompile(`\\[uU][dD][89a-fA-F]`)
)

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

func longestDigitRun(b []byte) int {
	run, best := 0, 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

func maxNesting(b []byte) int {
	depth, best := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			depth++
			best = max(best, depth)
		case ']', '}':
			depth--
		}
	}
	return best
}

// comparable reports whether encoding/json is a faithful reference for b.
func comparable(b []byte) bool {
	return isASCII(b) && !bytes.Contains(b, []byte("NaN")) && !bytes.Contains(b, []byte("Infinity")) &&
		!surrogateEscape.Match(b) && longestDigitRun(b) < 4000 && maxNesting(b) < 400
}

func refDecode(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	return v, true
}

// refRepr builds Python's repr of a decoded value the slow way.
func refRepr(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string:
		return refStrRepr(v)
	case json.Number:
		if !strings.ContainsAny(string(v), ".eE") {
			n, _ := new(big.Int).SetString(string(v), 10)
			return n.String()
		}
		f, _ := strconv.ParseFloat(string(v), 64)
		return refFloatRepr(f)
	case []any:
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = refRepr(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for k, x := range v {
			parts = append(parts, refStrRepr(k)+": "+refRepr(x))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	panic("unexpected type")
}

func refStrRepr(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x` + hexN(r, 2))
		case r < 0x7f || pyjson.IsPrintable(r):
			b.WriteRune(r)
		case r < 0x100:
			b.WriteString(`\x` + hexN(r, 2))
		case r < 0x10000:
			b.WriteString(`\u` + hexN(r, 4))
		default:
			b.WriteString(`\U` + hexN(r, 8))
		}
	}
	b.WriteByte(q)
	return b.String()
}

func hexN(r rune, n int) string {
	s := strconv.FormatInt(int64(r), 16)
	return strings.Repeat("0", n-len(s)) + s
}

// refFloatRepr is Python's float repr: shortest round-trip digits,
// scientific when the decimal exponent is < -4 or >= 16.
func refFloatRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, exps, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(exps)
	digits := strings.Replace(mant, ".", "", 1)
	if f == 0 {
		return sign + "0.0"
	}
	if exp < -4 || exp >= 16 {
		es := strconv.Itoa(abs(exp))
		if len(es) < 2 {
			es = "0" + es
		}
		esign := "+"
		if exp < 0 {
			esign = "-"
		}
		return sign + mant + "e" + esign + es
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if exp+1 >= len(digits) {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// addSeeds seeds a corpus from the fixture stores (the first lines of
// each, which include all kinds of record and of corrupt line) and the
// shorter golden lines. Long seeds make minimization slow.
func addSeeds(f *testing.F) {
	for _, store := range []string{"jsonl/store.jsonl", "rotating/store.log"} {
		lines := readFixtureLines(f, store)
		for i, l := range lines {
			if i < 120 || !json.Valid(l) {
				f.Add(l)
			}
		}
	}
	for _, gc := range readGolden(f) {
		if b, err := base64.StdEncoding.DecodeString(gc.Line); err == nil && len(b) <= 600 {
			f.Add(b)
		}
	}
	// The differential corpus: every line of the edge stores (line
	// endings, depth, special timestamps, duplicate keys, BOM, invalid
	// UTF-8, NUL), as Papyra's reader splits them.
	inputs, err := filepath.Glob(filepath.Join(fixtures, "edges", "*.input.jsonl"))
	if err != nil || len(inputs) == 0 {
		f.Fatalf("edge stores: %v (%d)", err, len(inputs))
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		lines, torn := edges.Split(data)
		for _, l := range lines {
			f.Add(l.Body)
		}
		f.Add(torn)
	}
}

func FuzzClassify(f *testing.F) {
	addSeeds(f)
	c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
	f.Fuzz(func(t *testing.T, line []byte) {
		if bytes.IndexByte(line, '\n') >= 0 {
			line = bytes.ReplaceAll(line, []byte{'\n'}, []byte{' '}) // Classify's contract
		}
		l := c.Classify(line, true)
		l2 := c.Classify(line, false)
		if l2.Class != l.Class || l2.Reason != l.Reason || l2.TS != l.TS || !sameFloat(l2.Value, l.Value) || l2.ReprSize != 0 {
			t.Fatalf("with size %+v, without %+v", l, l2)
		}
		if (l.Class == pyjson.Corrupt) != (l.Reason != pyjson.ReasonNone) {
			t.Fatalf("class and reason disagree: %+v", l)
		}
		if (l.Reason == pyjson.ReasonInvalidUTF8) != !utf8.Valid(line) {
			t.Fatalf("utf8.Valid = %v but %+v", utf8.Valid(line), l)
		}
		body := bytes.TrimSuffix(line, []byte{'\r'})
		if l.Reason == pyjson.ReasonInvalidUTF8 {
			return
		}
		if (l.Reason == pyjson.ReasonCarriageReturn) != (bytes.IndexByte(body, '\r') >= 0) {
			t.Fatalf("CR in body: %v, but %+v", bytes.IndexByte(body, '\r') >= 0, l)
		}
		if l.Reason == pyjson.ReasonCarriageReturn {
			return
		}
		st := pyjson.PyStrip(body)
		if (l.Class == pyjson.Blank) != (len(st) == 0) {
			t.Fatalf("stripped %q, but %+v", st, l)
		}
		if l.Class == pyjson.Record {
			n, ok := c.ReprSize(st)
			if !ok || n != l.ReprSize {
				t.Fatalf("ReprSize(stripped) = %d, %v; Classify said %d", n, ok, l.ReprSize)
			}
		}
		if l.Class == pyjson.Blank || !comparable(st) {
			if l.Class == pyjson.Record && !bytes.Contains(st, []byte("NaN")) && !bytes.Contains(st, []byte("Infinity")) &&
				isASCII(st) && !json.Valid(st) {
				t.Fatalf("Record, but encoding/json rejects %q", st)
			}
			return
		}
		valid := json.Valid(st)
		parsed := l.Class == pyjson.Record || l.Reason == pyjson.ReasonNotObject || l.Reason == pyjson.ReasonBadTimestamp
		if valid != parsed {
			t.Fatalf("encoding/json.Valid = %v, but %+v for %q", valid, l, st)
		}
		if !valid {
			return
		}
		v, ok := refDecode(st)
		if !ok {
			t.Fatalf("Valid but Decode fails: %q", st)
		}
		m, isObj := v.(map[string]any)
		if isObj != (l.Reason != pyjson.ReasonNotObject) {
			t.Fatalf("object %v, but %+v", isObj, l)
		}
		if !isObj {
			return
		}
		want := pyjson.Line{Class: pyjson.Record}
		if ts, has := m["timestamp"]; has {
			switch ts := ts.(type) {
			case nil:
				want.TS = pyjson.TSNull
			case bool:
				want.TS = pyjson.TSNumber
				if ts {
					want.Value = 1
				}
			case json.Number:
				want.TS = pyjson.TSNumber
				want.Value, _ = strconv.ParseFloat(string(ts), 64)
				if string(ts) == "-0" {
					want.Value = 0
				}
			default:
				want.Class, want.Reason = pyjson.Corrupt, pyjson.ReasonBadTimestamp
			}
		}
		want.ReprSize = int64(len(refRepr(m)))
		if l.Class != want.Class || l.Reason != want.Reason || l.TS != want.TS || !sameFloat(l.Value, want.Value) || l.ReprSize != want.ReprSize {
			t.Fatalf("Classify(%q)\n got %+v\nwant %+v (repr %s)", line, l, want, refRepr(m))
		}
	})
}

func FuzzReprSize(f *testing.F) {
	addSeeds(f)
	c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
	f.Fuzz(func(t *testing.T, text []byte) {
		n, ok := c.ReprSize(text)
		if n2, ok2 := pyjson.ReprSize(text); n2 != n || ok2 != ok {
			t.Fatalf("package ReprSize = %d, %v; method %d, %v", n2, ok2, n, ok)
		}
		if ok && (!utf8.Valid(text) || n < 1) {
			t.Fatalf("ok with invalid UTF-8 or size %d", n)
		}
		if !comparable(text) {
			return
		}
		if valid := json.Valid(text); valid != ok {
			t.Fatalf("encoding/json.Valid = %v, ReprSize ok = %v for %q", valid, ok, text)
		}
		if !ok {
			return
		}
		v, _ := refDecode(text)
		if want := refRepr(v); int64(len(want)) != n {
			t.Fatalf("ReprSize(%q) = %d, want %d: %s", text, n, len(want), want)
		}
	})
}

// TestFloatReprRandom compares the repr length of random float literals,
// which mostly take ReprSize's fast paths, with the slow reference.
func TestFloatReprRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := pyjson.NewClassifier(0)
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	for i := 0; i < 300000; i++ {
		var lit string
		switch rng.IntN(6) {
		case 4: // exactly halfway between two doubles (round half to even)
			lit = strconv.FormatUint(1<<52+rng.Uint64N(1<<52), 10) + ".5"
		case 5:
			lit = strconv.FormatUint(1<<51+rng.Uint64N(1<<51), 10) + []string{".25", ".75"}[rng.IntN(2)]
		case 0: // what Python writes
			f := math.Float64frombits(rng.Uint64())
			if math.IsNaN(f) || math.IsInf(f, 0) {
				continue
			}
			lit = refFloatRepr(f)
		case 1: // timestamps
			lit = strconv.FormatFloat(1.7e9+rng.Float64()*1e8, 'f', 1+rng.IntN(9), 64)
		default:
			lit = strconv.Itoa(rng.IntN(10)) + digits(rng.IntN(18))
			if rng.IntN(2) == 0 {
				lit = lit[:1] + "." + digits(1+rng.IntN(20))
			} else {
				lit += "." + digits(1+rng.IntN(20))
			}
			if rng.IntN(2) == 0 {
				lit += "e" + strconv.Itoa(rng.IntN(700)-350)
			}
		}
		if rng.IntN(3) == 0 && lit[0] != '-' {
			lit = "-" + lit
		}
		if strings.HasPrefix(strings.TrimPrefix(lit, "-"), "0") && len(strings.TrimPrefix(lit, "-")) > 1 &&
			strings.TrimPrefix(lit, "-")[1] != '.' {
			continue // not JSON (leading zero)
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			t.Fatal(err)
		}
		want := refFloatRepr(f)
		if got, ok := c.ReprSize([]byte(lit)); !ok || got != int64(len(want)) {
			t.Fatalf("ReprSize(%s) = %d, %v; want %d (%s)", lit, got, ok, len(want), want)
		}
		line := []byte(`{"timestamp": ` + lit + `}`)
		if l := c.Classify(line, false); l.TS != pyjson.TSNumber || !sameFloat(l.Value, f) {
			t.Fatalf("Classify(%s) = %+v, want value %v", line, l, f)
		}
	}
}
