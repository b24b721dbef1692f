// Package edges is the differential corpus of the file backends' tests:
// the 21 edge stores of testdata/fixtures/edges, which Papyra 0.1.1's own
// compaction was run on, and for each what Papyra reads in it before and
// after a compaction, line by line, as Papyra's reader splits it
// (universal newlines, papyra-formats.md §1.5). The backends' tests run
// papyra-compact on the same stores and check that Papyra then reads
// exactly what its own compaction leaves, and that what goes to
// quarantine is exactly what Papyra cannot read.
package edges

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Now is the clock the corpus was compacted at, and MaxAgeSeconds the
// policy (testdata/fixtures/README.md).
var Now = time.Unix(1795000000, 0)

// MaxAgeSeconds is the one retention setting of the corpus.
const MaxAgeSeconds = 86400.0

// Case is one edge store. Line numbers are 0-based indices into Split of
// the input: the store's lines as Papyra's reader sees them.
type Case struct {
	Name string
	// Records are the lines that parse to a JSON object: what Papyra
	// reads, before retention, when it can read the store at all.
	Records []int
	// Keeps are the records Papyra's own compaction keeps (and its reads
	// return, for the same clock): what it must read after ours too.
	Keeps []int
	// Out are the lines papyra-compact leaves in the store, in order:
	// Keeps, plus any line it keeps without counting (Unsure).
	Out []int
	// Quarantined are the lines papyra-compact quarantines: exactly
	// those Papyra cannot read.
	Quarantined []int
	// Counted is how many records papyra-compact counts.
	Counted int64
	// Torn: the store ends in a line without a terminator, carried over.
	Torn bool
	// PapyraError is the error of Papyra's compaction when it fails on the
	// store (<name>.papyra-error.txt); Why says what papyra-compact does
	// instead, and why no record Papyra could read is lost.
	PapyraError, Why string
	// Rotating differs for the rotating backend, whose reader Papyra
	// makes fail on a RecursionError (it catches only JSONDecodeError).
	RotatingPapyraFails bool
}

// Cases is the corpus.
var Cases = []Case{
	{Name: "cr-joined", Records: []int{0, 1, 2, 3}, Keeps: []int{0, 1, 2, 3}, Out: []int{0, 1, 2, 3}, Counted: 4},
	{Name: "cr-cr-lf", Records: []int{0, 2}, Keeps: []int{0, 2}, Out: []int{0, 2}, Counted: 2},
	{Name: "crlf", Records: []int{0, 1, 2}, Keeps: []int{0, 2}, Out: []int{0, 2}, Counted: 3},
	{Name: "cr-mixed-old", Records: []int{0, 1, 2}, Keeps: []int{1, 2}, Out: []int{1, 2}, Counted: 3},
	{Name: "bom-first-line", Records: []int{1}, Keeps: []int{1}, Out: []int{1}, Quarantined: []int{0}, Counted: 1},
	{Name: "deep-600", Records: []int{0, 1, 2}, Keeps: []int{0, 1, 2}, Out: []int{0, 1, 2}, Counted: 3},
	// CPython 3.11 gives up on line 1 (RecursionError); another Python may
	// not: it stays, uncounted, and Papyra still reads what it read.
	{Name: "deep-2000", Records: []int{0, 2}, Keeps: []int{0, 2}, Out: []int{0, 1, 2}, Counted: 2, RotatingPapyraFails: true},
	{Name: "ts-infinity", Records: []int{0, 1}, Keeps: []int{0, 1}, Out: []int{0, 1}, Counted: 2},
	{Name: "ts-neg-infinity", Records: []int{0, 1}, Keeps: []int{1}, Out: []int{1}, Counted: 2},
	{Name: "ts-nan", Records: []int{0, 1}, Keeps: []int{1}, Out: []int{1}, Counted: 2},
	{Name: "ts-null", Records: []int{0, 1}, Keeps: nil, Out: nil, Counted: 2},
	{Name: "ts-string-bool", Records: []int{0, 1, 2}, Keeps: []int{2}, Out: []int{2}, Quarantined: []int{0}, Counted: 2,
		PapyraError: "TypeError: '>=' not supported between instances of 'str' and 'float'",
		Why: "a string timestamp makes Papyra's age retention raise on every read: the line is quarantined " +
			"(its bytes kept), true counts as 1 and ages out as in Python, and Papyra reads the store again"},
	{Name: "ts-1e400", Records: []int{0, 1}, Keeps: []int{0, 1}, Out: []int{0, 1}, Counted: 2},
	{Name: "ts-boundary", Records: []int{0, 1, 2}, Keeps: []int{0, 2}, Out: []int{0, 2}, Counted: 3},
	{Name: "ts-big-int", Records: []int{0, 1}, Keeps: []int{0, 1}, Out: []int{0, 1}, Counted: 2},
	{Name: "duplicate-ts-key", Records: []int{0, 1}, Keeps: []int{0}, Out: []int{0}, Counted: 2},
	{Name: "whitespace-padded", Records: []int{0, 3}, Keeps: []int{0, 3}, Out: []int{0, 3}, Counted: 2},
	{Name: "not-object", Records: []int{3}, Keeps: []int{3}, Out: []int{3}, Quarantined: []int{0, 1, 2}, Counted: 1},
	{Name: "torn-tail", Records: []int{0}, Keeps: []int{0}, Out: []int{0}, Counted: 1, Torn: true},
	{Name: "invalid-utf8", Records: []int{0, 2}, Keeps: []int{0, 2}, Out: []int{0, 2}, Quarantined: []int{1}, Counted: 2,
		PapyraError: "UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff",
		Why: "invalid UTF-8 anywhere makes Papyra's whole read fail, so it reads nothing: the line is " +
			"quarantined (its bytes kept) and Papyra reads the other records again"},
	{Name: "nul-byte", Records: []int{0, 2}, Keeps: []int{0, 2}, Out: []int{0, 2}, Quarantined: []int{1}, Counted: 2},
}

// Line is one line of a store as Papyra's reader splits it.
type Line struct {
	Raw  []byte // with its terminator
	Body []byte // without
}

// Split splits data with Python's universal newlines, byte by byte: a
// line ends at "\n", "\r\n" or a lone "\r". It is the reference the
// tests hold the lines package to, written the plain way. torn is what
// follows the last terminator.
func Split(data []byte) (lines []Line, torn []byte) {
	start := 0
	for i := 0; i < len(data); i++ {
		end, term := -1, 0
		switch data[i] {
		case '\n':
			end, term = i+1, 1
		case '\r':
			end, term = i+1, 1
			if i+1 < len(data) && data[i+1] == '\n' {
				end, term = i+2, 2
			}
		}
		if end < 0 {
			continue
		}
		lines = append(lines, Line{Raw: data[start:end], Body: data[start : end-term]})
		start = end
		i = end - 1
	}
	return lines, data[start:]
}

var payloadI = regexp.MustCompile(`"i": (\d+)`)

// Identity names a record across re-serialization: Papyra's compaction
// rewrites what it keeps (1e400 becomes Infinity, a duplicate key goes,
// padding goes), so a record is known by its payload's "i", or by its
// text when it has none.
func Identity(body []byte) string {
	if m := payloadI.FindSubmatch(body); m != nil {
		return "i=" + string(m[1])
	}
	return string(bytes.TrimSpace(body))
}

// PapyraAgrees checks the case against what Papyra 0.1.1 itself did with
// the store in dir (testdata/fixtures/edges): its compaction left exactly
// the records Keeps names, in order, or it failed with PapyraError.
func PapyraAgrees(t testing.TB, dir string, c Case) {
	t.Helper()
	input, err := os.ReadFile(filepath.Join(dir, c.Name+".input.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines, _ := Split(input)
	if c.PapyraError != "" {
		msg, err := os.ReadFile(filepath.Join(dir, c.Name+".papyra-error.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(msg), c.PapyraError) {
			t.Errorf("Papyra failed with %q, the table says %q", msg, c.PapyraError)
		}
		return
	}
	kept, err := os.ReadFile(filepath.Join(dir, c.Name+".papyra.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	papyra, _ := Split(kept)
	var got, want []string
	for _, l := range papyra {
		got = append(got, Identity(l.Body))
	}
	for _, i := range c.Keeps {
		want = append(want, Identity(lines[i].Body))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Papyra's compaction kept %q, the table says %q", got, want)
	}
}

// Verify checks a store after papyra-compact's run against the case: out
// holds the store's files after the run in Papyra's read order (one for a
// JSON-lines store), quarantined the raw bytes of the quarantined lines.
// The lines left must be c.Out (byte for byte, terminators included, a
// torn tail carried over at the end), Papyra must then read exactly
// c.Keeps, and the quarantine must hold exactly c.Quarantined.
func Verify(t testing.TB, c Case, input []byte, out [][]byte, quarantined [][]byte) {
	t.Helper()
	lines, torn := Split(input)
	var got []int
	k := 0
	for fi, f := range out {
		fl, ftorn := Split(f)
		for _, l := range fl {
			for k < len(lines) && !bytes.Equal(lines[k].Raw, l.Raw) {
				k++
			}
			if k == len(lines) {
				t.Fatalf("the store holds %q, which is not a line of the input in order (lines glued or split?)", l.Raw)
			}
			got = append(got, k)
			k++
		}
		if len(ftorn) > 0 && (fi != len(out)-1 || !c.Torn || !bytes.Equal(ftorn, torn)) {
			t.Errorf("file %d ends in %q without a terminator; the input's torn tail is %q", fi, ftorn, torn)
		}
		if fi == len(out)-1 && c.Torn && !bytes.Equal(ftorn, torn) {
			t.Errorf("the torn tail %q was not carried over (store ends in %q)", torn, ftorn)
		}
	}
	if !slices.Equal(got, c.Out) {
		t.Errorf("lines left: got %v, want %v", got, c.Out)
	}
	if !utf8.Valid(bytes.Join(out, nil)) {
		t.Errorf("the store is not valid UTF-8 after the run: Papyra's reads fail")
	}
	var reads []int
	for _, i := range got {
		if slices.Contains(c.Records, i) {
			reads = append(reads, i)
		}
	}
	if !slices.Equal(reads, c.Keeps) {
		t.Errorf("Papyra reads records %v after the run, its own compaction keeps %v", reads, c.Keeps)
	}
	var want [][]byte
	for _, i := range c.Quarantined {
		want = append(want, lines[i].Body)
	}
	if len(quarantined) != len(want) {
		t.Fatalf("quarantined %d lines %q, want %d %q", len(quarantined), quarantined, len(want), want)
	}
	for i := range want {
		if !bytes.Equal(quarantined[i], want[i]) {
			t.Errorf("quarantined line %d: %q, want %q", i, quarantined[i], want[i])
		}
	}
}
