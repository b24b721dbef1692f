package pyjson

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxStreamDepth is the deepest nesting a Stream follows (one bit per
// level: 2 MiB); past it the line is Unsure with its timestamp unknown.
const maxStreamDepth = 1 << 24

// maxTSLiteral is the longest timestamp number literal a Stream reads; a
// longer one leaves the timestamp unknown (the line is Unsure).
const maxTSLiteral = 1 << 16

// maxKeyRaw bounds the raw text kept of a top-level key: "timestamp"
// written with every character escaped as \uXXXX is 54 bytes.
const maxKeyRaw = 64

// Stream states.
const (
	stLead     uint8 = iota // before the value: str.strip() whitespace
	stValue                 // a value is expected
	stArrFirst              // after '[': a value or ']'
	stObjFirst              // after '{': a key or '}'
	stKey                   // after ',' in an object: a key
	stColon                 // after a key: ':'
	stAfter                 // after a value in a container: ',' or the closer
	stString                // inside a string
	stNumber                // inside a number
	stLiteral               // inside true, false, null, NaN, Infinity, -Infinity
	stTrail                 // after the top-level value: str.strip() whitespace
	stStop                  // an error or a resource limit: only UTF-8 is checked on
)

// Number states: where in -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)? the
// number is.
const (
	nMinus   uint8 = iota // after '-'
	nZero                 // after a leading 0
	nInt                  // in the integer digits
	nDot                  // after '.'
	nFrac                 // in the fraction digits
	nE                    // after 'e'
	nESign                // after the exponent's sign
	nExp                  // in the exponent digits
	nEndable = 1<<nZero | 1<<nInt | 1<<nFrac | 1<<nExp
)

// Stream classifies one line given in pieces, as [Classifier.Classify]
// would, in memory bounded whatever the line's length or nesting: one bit
// per nesting level (at most maxStreamDepth) and a few small buffers. It
// follows any depth, so it also decides lines nested deeper than a
// Classifier's limit. It does not measure the repr size: a Record it
// returns has ReprSize 0. Feed the line without its terminator with
// Write, then call Line; Reset starts a new line.
//
// A valid object nested deeper than maxDepth is [Unsure]: whether Papyra
// reads it depends on its Python version and call stack. So is a line
// whose verdict would need more than the bounded memory (nesting past
// maxStreamDepth, or a timestamp literal longer than maxTSLiteral), with
// TS [TSUnknown] when its timestamp was not read.
type Stream struct {
	maxDepth int

	st      uint8
	err     Reason
	gaveUp  bool
	started bool // the value has begun
	topObj  bool // the value is an object
	stack   []uint64
	depth   int
	deepest int

	// UTF-8: continuation bytes still expected, and the range allowed
	// for the next one.
	u8need     int
	u8lo, u8hi byte
	u8bad      bool
	// A multi-byte character outside the value (strip whitespace or not).
	ws  [4]byte
	wsN int

	// Strings: esc is 0, 1 after '\\', 2-5 inside \uXXXX.
	esc     uint8
	isKey   bool
	key     []byte // raw text of a top-level key, up to maxKeyRaw bytes
	keyLong bool

	lit  string // the literal being matched
	litI int

	num     uint8 // number state
	digits  int   // integer digits of the number
	isFloat bool

	// The top-level "timestamp": tsNext after its key, tsOn while its
	// value is read; the last one wins.
	tsNext, tsOn bool
	tsLit        []byte
	tsLong       bool
	ts           TSKind
	tsVal        float64
	tsBad        bool
}

// NewStream returns a Stream that reports valid objects nested deeper
// than maxDepth (DefaultMaxDepth if maxDepth <= 0) as Unsure.
func NewStream(maxDepth int) *Stream {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	initTables()
	return &Stream{maxDepth: maxDepth}
}

// Reset prepares s for a new line.
func (s *Stream) Reset() {
	*s = Stream{maxDepth: s.maxDepth, stack: s.stack[:0], key: s.key[:0], tsLit: s.tsLit[:0]}
}

// Write feeds the next piece of the line.
func (s *Stream) Write(b []byte) {
	s.utf8(b)
	for i := 0; i < len(b); {
		if s.st == stStop {
			return
		}
		if s.st == stString && s.esc == 0 && !s.isKey {
			// The bulk of a huge line: plain string bytes, 8 at a time.
			for i+8 <= len(b) {
				// Bytes >= 0x80 are plain here: UTF-8 is checked apart.
				if v := binary.LittleEndian.Uint64(b[i:]); specialMask(v)&hi8&^v != 0 {
					break
				}
				i += 8
			}
			for i < len(b) && (b[i] >= 0x80 || plain[b[i]]) {
				i++
			}
			if i == len(b) {
				return
			}
		}
		s.byte(b[i])
		i++
	}
}

// utf8 checks b as the next piece of a strictly decoded UTF-8 text
// (surrogates and overlongs are invalid, as in Python's decoder).
func (s *Stream) utf8(b []byte) {
	if s.u8bad {
		return
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if s.u8need > 0 {
			if c < s.u8lo || c > s.u8hi {
				s.u8bad = true
				return
			}
			s.u8lo, s.u8hi = 0x80, 0xbf
			s.u8need--
			continue
		}
		if c < 0x80 {
			for i+8 < len(b) && binary.LittleEndian.Uint64(b[i+1:])&hi8 == 0 {
				i += 8
			}
			continue
		}
		s.u8lo, s.u8hi = 0x80, 0xbf
		switch {
		case c >= 0xc2 && c <= 0xdf:
			s.u8need = 1
		case c == 0xe0:
			s.u8need, s.u8lo = 2, 0xa0
		case c >= 0xe1 && c <= 0xec, c == 0xee, c == 0xef:
			s.u8need = 2
		case c == 0xed:
			s.u8need, s.u8hi = 2, 0x9f
		case c == 0xf0:
			s.u8need, s.u8lo = 3, 0x90
		case c >= 0xf1 && c <= 0xf3:
			s.u8need = 3
		case c == 0xf4:
			s.u8need, s.u8hi = 3, 0x8f
		default:
			s.u8bad = true
			return
		}
	}
}

func (s *Stream) fail(r Reason) {
	if s.err == ReasonNone {
		s.err = r
	}
	s.st = stStop
}

// byte advances the parse by one byte.
func (s *Stream) byte(c byte) {
	switch s.st {
	case stLead, stTrail:
		s.space(c)
	case stValue, stArrFirst:
		switch {
		case c == ' ' || c == '\t':
		case c == ']' && s.st == stArrFirst:
			s.pop(false)
		default:
			s.begin(c)
		}
	case stObjFirst, stKey:
		switch {
		case c == ' ' || c == '\t':
		case c == '"':
			s.st, s.isKey, s.esc = stString, true, 0
			s.key, s.keyLong = s.key[:0], false
		case c == '}' && s.st == stObjFirst:
			s.pop(true)
		default:
			s.fail(ReasonInvalidJSON)
		}
	case stColon:
		switch c {
		case ' ', '\t':
		case ':':
			s.st = stValue
		default:
			s.fail(ReasonInvalidJSON)
		}
	case stAfter:
		obj := s.inObject()
		switch {
		case c == ' ' || c == '\t':
		case c == ',' && obj:
			s.st = stKey
		case c == ',':
			s.st = stValue
		case c == '}' && obj, c == ']' && !obj:
			s.pop(obj)
		default:
			s.fail(ReasonInvalidJSON)
		}
	case stString:
		s.str(c)
	case stNumber:
		s.number(c)
	case stLiteral:
		if c != s.lit[s.litI] {
			s.fail(ReasonInvalidJSON)
			return
		}
		if s.litI++; s.litI == len(s.lit) {
			s.endLiteral()
		}
	}
}

// space handles a byte outside the value, where str.strip() removes
// Python whitespace: before the value, a byte that is not whitespace
// starts it; after it, any is an error.
func (s *Stream) space(c byte) {
	if s.wsN == 0 && c < 0x80 {
		if asciiSpace[c] {
			return
		}
		if s.st == stTrail {
			s.fail(ReasonInvalidJSON)
			return
		}
		s.started = true
		s.topObj = c == '{'
		s.begin(c)
		return
	}
	// A multi-byte character: whitespace (U+0085, U+00A0, U+3000, …) or
	// an error (a BOM, say). Invalid UTF-8 is the UTF-8 check's verdict.
	s.ws[s.wsN] = c
	s.wsN++
	if !utf8.FullRune(s.ws[:s.wsN]) {
		return
	}
	r, _ := utf8.DecodeRune(s.ws[:s.wsN])
	s.wsN = 0
	if !isPySpace(r) {
		s.started = true
		s.fail(ReasonInvalidJSON)
	}
}

// begin starts the value whose first byte is c.
func (s *Stream) begin(c byte) {
	if s.tsNext {
		s.tsNext, s.tsOn = false, true
		s.tsBad, s.ts, s.tsVal, s.tsLong = false, TSNumber, 0, false
		s.tsLit = s.tsLit[:0]
		switch c {
		case '"', '[', '{':
			s.tsBad, s.ts, s.tsOn = true, TSMissing, false
		}
	}
	switch {
	case c == '"':
		s.st, s.isKey, s.esc = stString, false, 0
	case c == '{':
		s.push(true)
	case c == '[':
		s.push(false)
	case c == 't':
		s.literal("true")
	case c == 'f':
		s.literal("false")
	case c == 'n':
		s.literal("null")
	case c == 'N':
		s.literal("NaN")
	case c == 'I':
		s.literal("Infinity")
	case c == '-':
		s.st, s.num, s.digits, s.isFloat = stNumber, nMinus, 0, false
		s.tsDigit(c)
	case c >= '0' && c <= '9':
		s.st, s.num, s.digits, s.isFloat = stNumber, nInt, 1, false
		if c == '0' {
			s.num = nZero
		}
		s.tsDigit(c)
	default:
		s.fail(ReasonInvalidJSON)
	}
}

func (s *Stream) literal(word string) { s.st, s.lit, s.litI = stLiteral, word, 1 }

func (s *Stream) endLiteral() {
	if s.tsOn {
		switch s.lit {
		case "null":
			s.ts = TSNull
		case "true":
			s.tsVal = 1
		case "false":
			s.tsVal = 0
		default: // NaN, Infinity, -Infinity
			s.tsLit = append(s.tsLit[:0], s.lit...)
			s.tsVal = parseFloat(s.tsLit)
		}
		s.tsOn = false
	}
	s.endValue()
}

// tsDigit keeps a byte of the timestamp's number literal.
func (s *Stream) tsDigit(c byte) {
	if !s.tsOn {
		return
	}
	if len(s.tsLit) >= maxTSLiteral {
		s.tsLong = true
		return
	}
	s.tsLit = append(s.tsLit, c)
}

// number advances a number by c, or ends it and hands c on.
func (s *Stream) number(c byte) {
	digit := c >= '0' && c <= '9'
	switch s.num {
	case nMinus:
		switch {
		case c == 'I':
			s.tsLit = s.tsLit[:0]
			s.st, s.lit, s.litI = stLiteral, "-Infinity", 2
			return
		case c == '0':
			s.num = nZero
		case digit:
			s.num = nInt
		default:
			s.fail(ReasonInvalidJSON)
			return
		}
		s.digits++
		s.tsDigit(c)
		return
	case nZero, nInt:
		switch {
		case digit && s.num == nInt:
			s.digits++
			s.tsDigit(c)
			return
		case c == '.':
			s.num, s.isFloat = nDot, true
			s.tsDigit(c)
			return
		case c == 'e' || c == 'E':
			s.num, s.isFloat = nE, true
			s.tsDigit(c)
			return
		}
	case nDot, nFrac:
		switch {
		case digit:
			s.num = nFrac
			s.tsDigit(c)
			return
		case s.num == nFrac && (c == 'e' || c == 'E'):
			s.num = nE
			s.tsDigit(c)
			return
		}
	case nE:
		if c == '+' || c == '-' {
			s.num = nESign
			s.tsDigit(c)
			return
		}
		fallthrough
	case nESign, nExp:
		if digit {
			s.num = nExp
			s.tsDigit(c)
			return
		}
	}
	if !s.endNumber() {
		return
	}
	s.byte(c)
}

// endNumber ends the number being read; false after an error.
func (s *Stream) endNumber() bool {
	if nEndable&(1<<s.num) == 0 {
		s.fail(ReasonInvalidJSON)
		return false
	}
	if !s.isFloat && s.digits > MaxIntDigits {
		s.fail(ReasonIntTooBig)
		return false
	}
	if s.tsOn {
		if !s.tsLong {
			s.tsVal = parseFloat(s.tsLit)
			if !s.isFloat && s.tsVal == 0 {
				s.tsVal = 0 // Python's int -0 is 0
			}
		}
		s.tsOn = false
	}
	s.endValue()
	return true
}

// str advances a string by c.
func (s *Stream) str(c byte) {
	if s.isKey && s.depth == 1 && s.topObj && (s.esc != 0 || c != '"') {
		if len(s.key) < maxKeyRaw {
			s.key = append(s.key, c)
		} else {
			s.keyLong = true
		}
	}
	switch s.esc {
	case 0:
		switch {
		case c == '"':
			s.endString()
		case c == '\\':
			s.esc = 1
		case c < 0x20:
			s.fail(ReasonInvalidJSON)
		}
	case 1:
		switch c {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			s.esc = 0
		case 'u':
			s.esc = 2
		default:
			s.fail(ReasonInvalidJSON)
		}
	default:
		if hexVal[c] < 0 {
			s.fail(ReasonInvalidJSON)
			return
		}
		if s.esc++; s.esc == 6 {
			s.esc = 0
		}
	}
}

func (s *Stream) endString() {
	if !s.isKey {
		s.endValue()
		return
	}
	s.st = stColon
	if s.depth == 1 && s.topObj {
		s.tsNext = !s.keyLong && string(decodeString(nil, s.key)) == tsKey
	}
}

// endValue moves on after a complete value.
func (s *Stream) endValue() {
	if s.depth == 0 {
		s.st = stTrail
		return
	}
	s.st = stAfter
}

func (s *Stream) inObject() bool {
	d := s.depth - 1
	return s.stack[d>>6]&(1<<(d&63)) != 0
}

func (s *Stream) push(obj bool) {
	if s.depth >= maxStreamDepth {
		s.gaveUp = true
		s.st = stStop
		return
	}
	d := s.depth
	if d>>6 >= len(s.stack) {
		s.stack = append(s.stack, 0)
	}
	if obj {
		s.stack[d>>6] |= 1 << (d & 63)
		s.st = stObjFirst
	} else {
		s.stack[d>>6] &^= 1 << (d & 63)
		s.st = stArrFirst
	}
	s.depth++
	s.deepest = max(s.deepest, s.depth)
}

func (s *Stream) pop(obj bool) {
	if s.inObject() != obj {
		s.fail(ReasonInvalidJSON)
		return
	}
	s.depth--
	s.endValue()
}

// Line returns the verdict on the line written since the last Reset.
func (s *Stream) Line() Line {
	if s.st == stNumber {
		s.endNumber()
	}
	if s.wsN > 0 && !s.u8bad {
		s.u8bad = true // a character cut short
	}
	switch {
	case s.u8bad || s.u8need > 0:
		return corrupt(ReasonInvalidUTF8)
	case s.gaveUp:
		return Line{Class: Unsure, TS: TSUnknown}
	case s.err != ReasonNone:
		return corrupt(s.err)
	case !s.started:
		return Line{Class: Blank}
	case s.st != stTrail:
		return corrupt(ReasonInvalidJSON)
	case !s.topObj:
		return corrupt(ReasonNotObject)
	case s.tsBad:
		return Line{Class: Corrupt, Reason: ReasonBadTimestamp, Deep: s.deepest > s.maxDepth}
	}
	l := Line{Class: Record, TS: s.ts, Value: s.tsVal}
	if s.ts == TSNumber && s.tsLong {
		l.TS, l.Value = TSUnknown, 0
	}
	l.Deep = s.deepest > s.maxDepth
	if l.Deep || l.TS == TSUnknown {
		l.Class = Unsure
	}
	return l
}
