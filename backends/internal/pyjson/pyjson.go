package pyjson

import (
	"bytes"
	"hash/maphash"
	"unicode/utf8"
)

// Class is what Papyra's reader makes of a line.
type Class uint8

const (
	// Record is a line that parses to a JSON object: Papyra keeps it.
	Record Class = iota
	// Blank is a line that is empty after str.strip(): Papyra skips it.
	Blank
	// Corrupt is any other line: Papyra drops it (or crashes on it, see
	// [ReasonBadTimestamp] and [ReasonIntTooBig]).
	Corrupt
	// Unsure is a line whose fate in Papyra's reader cannot be told for
	// certain: a valid object nested deeper than the classifier's limit
	// (CPython gives up at a depth that depends on its version and call
	// stack), or one whose verdict would need more than bounded memory
	// ([Line.TS] is then [TSUnknown] when its timestamp was not read).
	// Such a line must be neither quarantined nor counted as a record.
	Unsure
)

// String returns the class name.
func (c Class) String() string {
	switch c {
	case Record:
		return "record"
	case Blank:
		return "blank"
	case Corrupt:
		return "corrupt"
	case Unsure:
		return "unsure"
	}
	return "unknown class"
}

// Reason says why a line is Corrupt.
type Reason uint8

const (
	ReasonNone           Reason = iota
	ReasonInvalidJSON           // json.loads raises JSONDecodeError
	ReasonNotObject             // valid JSON, but not an object
	ReasonBadTimestamp          // "timestamp" is a string, array or object
	ReasonInvalidUTF8           // Python's strict UTF-8 read would fail
	ReasonCarriageReturn        // a raw '\r' that is not the CR of a CRLF
	ReasonTooDeep               // no longer returned: deeper lines are followed (Unsure)
	ReasonTooLong               // no longer set by the file backends: longer lines are streamed
	ReasonIntTooBig             // integer literal over 4300 digits: CPython raises ValueError
)

// String returns a short human phrase.
func (r Reason) String() string {
	switch r {
	case ReasonNone:
		return "none"
	case ReasonInvalidJSON:
		return "invalid JSON"
	case ReasonNotObject:
		return "not a JSON object"
	case ReasonBadTimestamp:
		return "timestamp is not a number or null"
	case ReasonInvalidUTF8:
		return "invalid UTF-8"
	case ReasonCarriageReturn:
		return "carriage return inside the line"
	case ReasonTooDeep:
		return "nested too deeply"
	case ReasonTooLong:
		return "line too long"
	case ReasonIntTooBig:
		return "integer longer than 4300 digits"
	}
	return "unknown reason"
}

// TSKind describes the top-level "timestamp" field of a record.
type TSKind uint8

const (
	TSMissing TSKind = iota // no "timestamp" key
	TSNull                  // "timestamp": null
	TSNumber                // a number, NaN, ±Infinity, or true/false (1/0)
	TSUnknown               // not read (an Unsure line)
)

// Line is the verdict on one line.
type Line struct {
	Class  Class
	Reason Reason // set when Class == Corrupt
	TS     TSKind
	// Value is the timestamp when TS == TSNumber. It may be NaN or ±Inf
	// (an overflowing literal such as 1e400 is +Inf, as in Python).
	Value float64
	// ReprSize is len(repr(obj).encode("utf-8")) of the parsed dict. It is
	// set only when asked for and the line parses to an object.
	ReprSize int64
	// Deep is set on an object nested deeper than the classifier's limit
	// (Unsure, or Corrupt for its timestamp): whether Papyra reads it at
	// all depends on its Python.
	Deep bool
}

// DefaultMaxDepth is the deepest nesting whose verdict is certain, used
// when NewClassifier gets a non-positive limit. CPython's json gives up
// with RecursionError when the nesting plus the caller's stack reaches the
// recursion limit (1000 by default): on Papyra 0.1.1's compaction path
// under CPython 3.11 depth 980 is read and 985 is not, and the boundary
// moves with the Python version and the call stack. Up to 900 levels
// leave 80 frames of margin; a deeper valid object is [Unsure], kept in
// place and not counted, whichever way Papyra goes.
const DefaultMaxDepth = 900

// MaxIntDigits is CPython 3.11's default sys.get_int_max_str_digits():
// json.loads raises ValueError on a longer integer literal.
const MaxIntDigits = 4300

// linearKeys is the number of keys up to which duplicate keys are found by
// a linear scan; larger objects use a hash index.
const linearKeys = 16

// keyEnt is one distinct key of an object being measured.
type keyEnt struct {
	start, end int32 // raw key text inside the quotes
	dlen       int32 // decoded length in bytes (surrogates as 3 bytes)
	esc        bool  // the raw text has escapes
	val        int64 // repr size of the (last) value
}

// Classifier holds reusable scratch; it is not safe for concurrent use.
type Classifier struct {
	maxDepth int
	keys     []keyEnt
	// For objects with more than linearKeys keys, parallel to keys: the
	// key hashes and the hash chains (entry index+1, 0 ends).
	khash []uint64
	knext []int32
	idx   []map[uint64]int32 // per depth: key hash -> entry index+1
	seed  maphash.Seed
	dec1  []byte
	dec2  []byte
	fbuf  [40]byte
	p     parser
	deep  *Stream // for lines nested deeper than maxDepth
}

// maxLine is the longest line Classify accepts (offsets are int32).
const maxLine = 1<<31 - 1

// NewClassifier returns a classifier that rejects nesting deeper than
// maxDepth (DefaultMaxDepth if maxDepth <= 0).
func NewClassifier(maxDepth int) *Classifier {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	initTables()
	return &Classifier{maxDepth: maxDepth, seed: maphash.MakeSeed()}
}

// Classify looks at one line without its trailing '\n'; it may end in the
// '\r' of a CRLF file. The line must not contain '\n'.
func (c *Classifier) Classify(line []byte, wantSize bool) Line {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return Line{Class: Blank}
	}
	if len(line) > maxLine {
		return corrupt(ReasonTooLong)
	}
	s := line
	if first, last := line[0], line[len(line)-1]; isStripCandidate(first) || isStripCandidate(last) {
		s = PyStrip(line)
		if len(s) != len(line) {
			// Whitespace was stripped; a raw CR there still splits the line.
			if !utf8.Valid(line) {
				return corrupt(ReasonInvalidUTF8)
			}
			if bytes.IndexByte(line, '\r') >= 0 {
				return corrupt(ReasonCarriageReturn)
			}
		}
		if len(s) == 0 {
			return Line{Class: Blank}
		}
	}
	p := &c.p
	*p = parser{s: s, c: c, size: wantSize}
	c.keys = c.keys[:0]
	var (
		end  int
		size int64
	)
	isObj := s[0] == '{'
	if isObj {
		end, size = p.object(0, true)
	} else {
		end, size = p.value(0)
	}
	if end >= 0 {
		end = p.ws(end)
		if end >= 0 && end != len(s) {
			end = p.fail(ReasonInvalidJSON)
		}
	}
	if end < 0 && p.err == ReasonTooDeep {
		return c.classifyDeep(line)
	}
	if end < 0 {
		return corrupt(finalReason(line, p.err))
	}
	if !isObj {
		return corrupt(ReasonNotObject)
	}
	l := Line{Class: Record, TS: p.ts, Value: p.tsVal}
	if wantSize {
		l.ReprSize = size
	}
	if p.tsBad {
		l.Class, l.Reason, l.TS, l.Value = Corrupt, ReasonBadTimestamp, TSMissing, 0
	}
	return l
}

func corrupt(r Reason) Line { return Line{Class: Corrupt, Reason: r} }

// classifyDeep classifies a line nested deeper than c's limit with a
// Stream, which follows any depth: it is Unsure if valid, Corrupt if not.
func (c *Classifier) classifyDeep(line []byte) Line {
	if c.deep == nil {
		c.deep = NewStream(c.maxDepth)
	}
	c.deep.Reset()
	c.deep.Write(line)
	l := c.deep.Line()
	if l.Reason != ReasonInvalidUTF8 && bytes.IndexByte(line, '\r') >= 0 {
		return corrupt(ReasonCarriageReturn)
	}
	return l
}

// finalReason applies the precedence between a parse error and problems
// elsewhere in the line: invalid UTF-8 aborts Python's read of the whole
// file, and a raw CR splits the line before json.loads ever sees it.
func finalReason(line []byte, r Reason) Reason {
	if r == ReasonInvalidUTF8 || !utf8.Valid(line) {
		return ReasonInvalidUTF8
	}
	if bytes.IndexByte(line, '\r') >= 0 {
		return ReasonCarriageReturn
	}
	return r
}

// ReprSize parses text with json.loads semantics (whitespace ' ', \t, \n,
// \r allowed around tokens; no str.strip()) and returns the UTF-8 length of
// the Python repr of the value, which need not be an object. ok is false
// if json.loads would raise, or the value nests deeper than
// DefaultMaxDepth.
func ReprSize(text []byte) (size int64, ok bool) {
	c := NewClassifier(DefaultMaxDepth)
	return c.ReprSize(text)
}

// ReprSize is the package-level ReprSize using c's scratch and depth limit.
func (c *Classifier) ReprSize(text []byte) (size int64, ok bool) {
	if len(text) > maxLine {
		return 0, false
	}
	p := &c.p
	*p = parser{s: text, c: c, size: true, allowCR: true}
	c.keys = c.keys[:0]
	end := p.ws(0)
	if end >= 0 {
		end, size = p.value(end)
	}
	if end >= 0 {
		end = p.ws(end)
	}
	if end != len(text) || !utf8.Valid(text) {
		return 0, false
	}
	return size, true
}

// asciiSpace marks the ASCII characters for which Python's str.isspace()
// is true.
var asciiSpace = [128]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true,
	0x1c: true, 0x1d: true, 0x1e: true, 0x1f: true, ' ': true}

func isStripCandidate(b byte) bool { return b >= 0x80 || asciiSpace[b] }

// isPySpace reports whether Python's str.isspace() is true for r.
func isPySpace(r rune) bool {
	if r < 0x80 {
		return asciiSpace[r]
	}
	switch {
	case r == 0x85, r == 0xa0, r == 0x1680, r >= 0x2000 && r <= 0x200a,
		r == 0x2028, r == 0x2029, r == 0x202f, r == 0x205f, r == 0x3000:
		return true
	}
	return false
}

// PyStrip returns line with Python str.strip() whitespace removed from both
// ends. Stripping stops at invalid UTF-8.
func PyStrip(line []byte) []byte {
	i := 0
	for i < len(line) {
		b := line[i]
		if b < 0x80 {
			if !asciiSpace[b] {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(line[i:])
		if n == 1 || !isPySpace(r) {
			break
		}
		i += n
	}
	j := len(line)
	for j > i {
		b := line[j-1]
		if b < 0x80 {
			if !asciiSpace[b] {
				break
			}
			j--
			continue
		}
		r, n := utf8.DecodeLastRune(line[i:j])
		if n == 1 || !isPySpace(r) {
			break
		}
		j -= n
	}
	return line[i:j]
}
