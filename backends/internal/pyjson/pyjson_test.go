package pyjson_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

var genUnicode14 = flag.Bool("gen-unicode14", false, "regenerate unicode14.go from testdata/printable14.txt")

const fixtures = "../../../testdata/fixtures"

// goldenCase is one line of testdata/golden.jsonl (see testdata/gen.py).
type goldenCase struct {
	Name   string `json:"name"`
	Line   string `json:"line"`
	Class  string `json:"class"`
	Reason string `json:"reason"`
	TSKind string `json:"ts_kind"`
	TS     string `json:"ts"`
	Size   int64  `json:"size"`
}

var classNames = map[string]pyjson.Class{"Record": pyjson.Record, "Blank": pyjson.Blank, "Corrupt": pyjson.Corrupt, "Unsure": pyjson.Unsure}

var reasonNames = map[string]pyjson.Reason{
	"":               pyjson.ReasonNone,
	"InvalidJSON":    pyjson.ReasonInvalidJSON,
	"NotObject":      pyjson.ReasonNotObject,
	"BadTimestamp":   pyjson.ReasonBadTimestamp,
	"InvalidUTF8":    pyjson.ReasonInvalidUTF8,
	"CarriageReturn": pyjson.ReasonCarriageReturn,
	"TooDeep":        pyjson.ReasonTooDeep,
	"TooLong":        pyjson.ReasonTooLong,
	"IntTooBig":      pyjson.ReasonIntTooBig,
}

var tsNames = map[string]pyjson.TSKind{"Missing": pyjson.TSMissing, "Null": pyjson.TSNull, "Number": pyjson.TSNumber}

func readGolden(t testing.TB) []goldenCase {
	t.Helper()
	f, err := os.Open("testdata/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cases) < 500 {
		t.Fatalf("only %d golden cases", len(cases))
	}
	return cases
}

func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (a != a && b != b)
}

// TestGolden compares Classify with CPython 3.11 on the lines of
// testdata/golden.jsonl.
func TestGolden(t *testing.T) {
	c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
	for _, gc := range readGolden(t) {
		t.Run(gc.Name, func(t *testing.T) {
			line, err := base64.StdEncoding.DecodeString(gc.Line)
			if err != nil {
				t.Fatal(err)
			}
			want := pyjson.Line{Class: classNames[gc.Class], Reason: reasonNames[gc.Reason], TS: tsNames[gc.TSKind]}
			if want.TS == pyjson.TSNumber {
				if want.Value, err = strconv.ParseFloat(gc.TS, 64); err != nil {
					t.Fatal(err)
				}
			}
			wantSize := gc.Size >= 0 && (want.Class == pyjson.Record || want.Reason == pyjson.ReasonBadTimestamp)
			for _, ws := range []bool{false, true} {
				got := c.Classify(line, ws)
				w := want
				if ws && wantSize {
					w.ReprSize = gc.Size
				}
				if got.Class != w.Class || got.Reason != w.Reason || got.TS != w.TS ||
					!sameFloat(got.Value, w.Value) || got.ReprSize != w.ReprSize {
					t.Errorf("Classify(%.200q, %v)\n got %+v\nwant %+v", line, ws, got, w)
				}
			}
			if gc.Size >= 0 && !bytes.ContainsRune(line, '\r') {
				if n, ok := pyjson.ReprSize(pyjson.PyStrip(line)); !ok || n != gc.Size {
					t.Errorf("ReprSize = %d, %v; want %d", n, ok, gc.Size)
				}
			}
		})
	}
}

type storeStats struct {
	Lines     int            `json:"lines"`
	Records   int            `json:"records"`
	Blank     int            `json:"blank"`
	Corrupt   int            `json:"corrupt"`
	Reasons   map[string]int `json:"reasons"`
	ReprTotal int64          `json:"repr_total"`
	Files     []string       `json:"files"`
}

func splitLines(data []byte) [][]byte {
	lines := bytes.Split(data, []byte{'\n'})
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func readFixtureLines(t testing.TB, files ...string) [][]byte {
	t.Helper()
	var lines [][]byte
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(fixtures, f))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, splitLines(data)...)
	}
	return lines
}

// TestStoreFixtures classifies every line of the stores written by Papyra
// and compares counts and the total repr size with CPython's.
func TestStoreFixtures(t *testing.T) {
	data, err := os.ReadFile("testdata/store.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string]storeStats
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if g := golden["jsonl/store.jsonl"]; g.Records != 2000 || g.Corrupt != 20 || g.Lines != 2020 {
		t.Fatalf("store.json does not describe the 2000+20 line fixture: %+v", g)
	}
	rotFiles := golden["rotating/store.log*"].Files
	if len(rotFiles) == 0 {
		t.Fatal("store.json lists no rotating files")
	}
	for _, tc := range []struct {
		name  string
		files []string
	}{
		{"jsonl/store.jsonl", []string{"jsonl/store.jsonl"}},
		{"rotating/store.log*", rotFiles},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := golden[tc.name]
			c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
			got := storeStats{Reasons: map[string]int{}}
			reasonName := map[pyjson.Reason]string{}
			for k, v := range reasonNames {
				reasonName[v] = k
			}
			for _, line := range readFixtureLines(t, tc.files...) {
				got.Lines++
				l := c.Classify(line, true)
				switch l.Class {
				case pyjson.Record:
					got.Records++
					got.ReprTotal += l.ReprSize
					if l.TS != pyjson.TSNumber {
						t.Errorf("record without a numeric timestamp: %q", line)
					}
				case pyjson.Blank:
					got.Blank++
				default:
					got.Corrupt++
					got.Reasons[reasonName[l.Reason]]++
				}
			}
			if got.Lines != want.Lines || got.Records != want.Records || got.Blank != want.Blank ||
				got.Corrupt != want.Corrupt || got.ReprTotal != want.ReprTotal || fmt.Sprint(got.Reasons) != fmt.Sprint(want.Reasons) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestReprSize pins a few Python reprs by hand.
func TestReprSize(t *testing.T) {
	for _, tc := range []struct {
		name, json, repr string
	}{
		{"empty_dict", `{}`, `{}`},
		{"separators", `{"a":1,"b":[1,2]}`, `{'a': 1, 'b': [1, 2]}`},
		{"literals", `[true,false,null]`, `[True, False, None]`},
		{"minus_zero_int", `-0`, `0`},
		{"minus_zero_float", `-0.0`, `-0.0`},
		{"exp16", `1e16`, `1e+16`},
		{"exp15", `1e15`, `1000000000000000.0`},
		{"exp_small", `1E-7`, `1e-07`},
		{"e2", `1E2`, `100.0`},
		{"big_float", `12345678901234567890.0`, `1.2345678901234567e+19`},
		{"keep16", `1234567890123456.0`, `1234567890123456.0`},
		{"tenthousandth", `0.0001`, `0.0001`},
		{"hundredthousandth", `0.00001`, `1e-05`},
		{"mantissa", `1.5e16`, `1.5e+16`},
		{"exp3", `1e-300`, `1e-300`},
		{"overflow", `1e400`, `inf`},
		{"neg_overflow", `-1e400`, `-inf`},
		{"underflow", `1e-400`, `0.0`},
		{"nan", `NaN`, `nan`},
		{"neg_inf", `-Infinity`, `-inf`},
		{"shortest", `0.10000000000000001`, `0.1`},
		{"single_quote", `"it's"`, `"it's"`},
		{"double_quote", `"say \"hi\""`, `'say "hi"'`},
		{"both_quotes", `"it's \"x\""`, `'it\'s "x"'`},
		{"escapes", `"\t\n\r\\\b\u0000\u007f"`, `'\t\n\r\\\x08\x00\x7f'`},
		{"latin1", `"\u00e9\u00a0\u00ad"`, "'\u00e9\\xa0\\xad'"},
		{"bmp_nonprintable", `"\u2028\ufeff\u3000"`, `'\u2028\ufeff\u3000'`},
		{"astral", `"\ud83d\ude00\udb40\udc01"`, "'\U0001F600\\U000e0001'"},
		{"lone_surrogate", `"\ud800"`, `'\ud800'`},
		{"unicode15_unassigned_in_py311", `"\ud83e\udee8"`, `'\U0001fae8'`},
		{"duplicate_keys", `{"a":1,"b":2,"a":"xyz"}`, `{'a': 'xyz', 'b': 2}`},
		{"duplicate_escaped_key", `{"a":1,"\u0061":[]}`, `{'a': []}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := pyjson.ReprSize([]byte(tc.json))
			if !ok || got != int64(len(tc.repr)) {
				t.Errorf("ReprSize(%s) = %d, %v; want %d (%s)", tc.json, got, ok, len(tc.repr), tc.repr)
			}
		})
	}
}

func TestPyStrip(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"none", `{"a": 1}`, `{"a": 1}`},
		{"ascii", " \t\v\f\r\x1c\x1d\x1e\x1fx \x1f", "x"},
		{"unicode", "\u3000\u00a0\u0085x\u2028\u2029\u202f\u205f\u1680\u2000\u200a", "x"},
		{"bom_kept", "\ufeffx\ufeff", "\ufeffx\ufeff"},
		{"zwsp_kept", "\u200bx", "\u200bx"},
		{"all", " \u3000 ", ""},
		{"invalid_utf8_stops", " \xffx\xa0 ", "\xffx\xa0"},
		{"inner_kept", "a \u3000 b", "a \u3000 b"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(pyjson.PyStrip([]byte(tc.in))); got != tc.want {
				t.Errorf("PyStrip(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestClassifyDepth(t *testing.T) {
	c := pyjson.NewClassifier(3)
	for _, tc := range []struct {
		name, line string
		class      pyjson.Class
		want       pyjson.Reason
	}{
		{"depth3", `{"a": [{}]}`, pyjson.Record, pyjson.ReasonNone},
		// Deeper than the limit: followed to the end, never "too deep".
		{"depth4", `{"a": [{"b": []}]}`, pyjson.Unsure, pyjson.ReasonNone},
		{"depth4_invalid", `{"a": [{"b": [}]}`, pyjson.Corrupt, pyjson.ReasonInvalidJSON},
		{"depth4_not_object", `[[[[]]]]`, pyjson.Corrupt, pyjson.ReasonNotObject},
		{"syntax_first", `{"a": x [[[[`, pyjson.Corrupt, pyjson.ReasonInvalidJSON},
		{"depth_then_cr", "{\"a\": [[[[\r1", pyjson.Corrupt, pyjson.ReasonCarriageReturn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Classify([]byte(tc.line), true); got.Class != tc.class || got.Reason != tc.want {
				t.Errorf("Classify(%q) = %+v, want %v, reason %v", tc.line, got, tc.class, tc.want)
			}
		})
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]bool{}
	for name, r := range reasonNames {
		s := r.String()
		if s == "" || strings.HasPrefix(s, "unknown") || seen[s] {
			t.Errorf("%s: String() = %q", name, s)
		}
		seen[s] = true
	}
}

// TestNoAllocs checks the steady state allocates nothing per line.
func TestNoAllocs(t *testing.T) {
	lines := readFixtureLines(t, "jsonl/store.jsonl", "rotating/store.log")
	for _, ws := range []bool{false, true} {
		t.Run(fmt.Sprintf("size=%v", ws), func(t *testing.T) {
			c := pyjson.NewClassifier(pyjson.DefaultMaxDepth)
			for _, l := range lines {
				c.Classify(l, ws)
			}
			allocs := testing.AllocsPerRun(5, func() {
				for _, l := range lines {
					c.Classify(l, ws)
				}
			})
			if allocs != 0 {
				t.Errorf("%v allocations per pass over %d lines", allocs, len(lines))
			}
		})
	}
}

func readPrintable14(t *testing.T) [][2]rune {
	t.Helper()
	data, err := os.ReadFile("testdata/printable14.txt")
	if err != nil {
		t.Fatal(err)
	}
	var ranges [][2]rune
	for _, ln := range strings.Split(string(data), "\n") {
		if ln == "" || ln[0] == '#' {
			continue
		}
		var lo, hi rune
		if _, err := fmt.Sscanf(ln, "%x %x", &lo, &hi); err != nil {
			t.Fatalf("%q: %v", ln, err)
		}
		ranges = append(ranges, [2]rune{lo, hi})
	}
	return ranges
}

func pyPrintableTable(t *testing.T) []bool {
	p := make([]bool, unicode.MaxRune+1)
	for _, r := range readPrintable14(t) {
		for c := r[0]; c <= r[1]; c++ {
			p[c] = true
		}
	}
	return p
}

// TestIsPrintable compares IsPrintable with CPython 3.11's
// str.isprintable() for every code point.
func TestIsPrintable(t *testing.T) {
	py := pyPrintableTable(t)
	bad := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if got := pyjson.IsPrintable(r); got != py[r] {
			if bad++; bad < 20 {
				t.Errorf("IsPrintable(%U) = %v, Python says %v", r, got, py[r])
			}
		}
	}
}

// TestGenerateUnicode14 checks that unicode14.go is what the table in
// testdata and this Go's Unicode tables make of it, and rewrites it when
// run with "go test -run TestGenerateUnicode14 . -args -gen-unicode14"
// (after regenerating testdata/printable14.txt with testdata/gen.py, or
// after a Go upgrade changes unicode.Version).
func TestGenerateUnicode14(t *testing.T) {
	py := pyPrintableTable(t)
	var b strings.Builder
	b.WriteString("// Code generated by TestGenerateUnicode14 (go test -run TestGenerateUnicode14 . -args -gen-unicode14); DO NOT EDIT.\n\n")
	b.WriteString("package pyjson\n\n")
	b.WriteString("// unicode14Unassigned lists, as inclusive ranges, the code points that are\n")
	b.WriteString("// unassigned (category Cn, so not printable) in Unicode 14.0, which\n")
	fmt.Fprintf(&b, "// CPython 3.11 uses, but printable under Go's Unicode %s tables.\n", unicode.Version)
	b.WriteString("var unicode14Unassigned = [][2]rune{\n")
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if py[r] && !unicode.IsPrint(r) {
			t.Fatalf("%U is printable in Python 3.11 but not in Go's Unicode %s: extend the table format", r, unicode.Version)
		}
		if !unicode.IsPrint(r) || py[r] {
			continue
		}
		lo := r
		for r+1 <= unicode.MaxRune && unicode.IsPrint(r+1) && !py[r+1] {
			r++
		}
		fmt.Fprintf(&b, "\t{0x%04X, 0x%04X},\n", lo, r)
	}
	b.WriteString("}\n")
	if *genUnicode14 {
		if err := os.WriteFile("unicode14.go", []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile("unicode14.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(have) != b.String() {
		t.Errorf("unicode14.go is stale (Go's Unicode is %s): regenerate it with -gen-unicode14", unicode.Version)
	}
}
