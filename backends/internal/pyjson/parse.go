package pyjson

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// parser is a recursive-descent json.loads emulator. Every method takes the
// index of its first byte and returns the index after what it consumed, or
// -1 after recording the error in p.err.
type parser struct {
	s       []byte
	c       *Classifier
	depth   int
	err     Reason
	size    bool // compute repr sizes
	allowCR bool // treat a raw '\r' as JSON whitespace (ReprSize)

	wantNum bool    // the value being parsed is the top-level timestamp
	num     float64 // its numeric value

	ts    TSKind
	tsVal float64
	tsBad bool
}

func (p *parser) fail(r Reason) int {
	if p.err == ReasonNone {
		p.err = r
	}
	return -1
}

// ws skips JSON whitespace.
func (p *parser) ws(i int) int {
	s := p.s
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n':
			i++
		case '\r':
			if !p.allowCR {
				return p.fail(ReasonCarriageReturn)
			}
			i++
		default:
			return i
		}
	}
	return i
}

// value parses any JSON value and returns its repr size when p.size.
func (p *parser) value(i int) (int, int64) {
	s := p.s
	if i >= len(s) {
		return p.fail(ReasonInvalidJSON), 0
	}
	switch c := s[i]; c {
	case '"':
		if p.size {
			j, n, _, _ := p.strSize(i)
			return j, n
		}
		j, _ := p.skipStr(i)
		return j, 0
	case '{':
		return p.object(i, false)
	case '[':
		return p.array(i)
	case 't':
		return p.lit(i, "true"), 4
	case 'f':
		return p.lit(i, "false"), 5
	case 'n':
		return p.lit(i, "null"), 4
	case 'N':
		p.num = math.NaN()
		return p.lit(i, "NaN"), 3
	case 'I':
		p.num = math.Inf(1)
		return p.lit(i, "Infinity"), 3
	case '-':
		if i+1 < len(s) && s[i+1] == 'I' {
			p.num = math.Inf(-1)
			return p.lit(i, "-Infinity"), 4
		}
		return p.number(i)
	default:
		if c >= '0' && c <= '9' {
			return p.number(i)
		}
	}
	return p.fail(ReasonInvalidJSON), 0
}

func (p *parser) lit(i int, word string) int {
	if len(p.s)-i >= len(word) && string(p.s[i:i+len(word)]) == word {
		return i + len(word)
	}
	return p.fail(ReasonInvalidJSON)
}

// number parses -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)? with ASCII digits.
// CPython's scanner backtracks over a '.' or an exponent marker that is
// not followed by digits; the leftover byte can never continue a valid
// document, so failing right away gives the same verdict.
func (p *parser) number(i int) (int, int64) {
	s := p.s
	start := i
	if s[i] == '-' {
		i++
	}
	if i >= len(s) {
		return p.fail(ReasonInvalidJSON), 0
	}
	if s[i] == '0' {
		i++
	} else if s[i] >= '1' && s[i] <= '9' {
		i++
		for i < len(s) && s[i]-'0' < 10 {
			i++
		}
	} else {
		return p.fail(ReasonInvalidJSON), 0
	}
	intEnd := i
	isFloat := false
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i]-'0' >= 10 {
			return p.fail(ReasonInvalidJSON), 0
		}
		for i < len(s) && s[i]-'0' < 10 {
			i++
		}
		isFloat = true
	}
	if i < len(s) && s[i]|0x20 == 'e' {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i]-'0' >= 10 {
			return p.fail(ReasonInvalidJSON), 0
		}
		for i < len(s) && s[i]-'0' < 10 {
			i++
		}
		isFloat = true
	}
	lit := s[start:i]
	if !isFloat {
		digits := intEnd - start
		if s[start] == '-' {
			digits--
		}
		if digits > MaxIntDigits {
			return p.fail(ReasonIntTooBig), 0
		}
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			p.num = 0
			return i, 1 // Python int -0 is 0
		}
		if p.wantNum {
			p.num = parseFloat(lit)
		}
		return i, int64(len(lit))
	}
	if !p.size && !p.wantNum {
		return i, 0
	}
	f := parseFloat(lit)
	p.num = f
	if !p.size {
		return i, 0
	}
	return i, int64(floatReprLen(f, &p.c.fbuf))
}

// parseFloat converts a validated JSON number literal. Overflow gives ±Inf
// and underflow ±0, as Python's float() does.
func parseFloat(lit []byte) float64 {
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), 64)
	return f
}

// floatReprLen is len(repr(f)) for a Python float.
func floatReprLen(f float64, buf *[40]byte) int {
	switch {
	case f != f:
		return 3 // nan
	case math.IsInf(f, 1):
		return 3 // inf
	case math.IsInf(f, -1):
		return 4 // -inf
	case f == 0:
		if math.Signbit(f) {
			return 4 // -0.0
		}
		return 3 // 0.0
	}
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // -d.ddde±xx
	neg := 0
	if b[0] == '-' {
		neg = 1
		b = b[1:]
	}
	e := 0
	k := len(b) - 1
	for b[k] != 'e' {
		k--
	}
	nd := k // digits plus the point, if any
	if nd > 1 {
		nd-- // the '.'
	}
	for _, d := range b[k+2:] {
		e = e*10 + int(d-'0')
	}
	if b[k+1] == '-' {
		e = -e
	}
	decpt := e + 1 // value = 0.d1d2... * 10**decpt
	if decpt <= -4 || decpt > 16 {
		n := neg + nd + 2 // mantissa digits, 'e', sign
		if nd > 1 {
			n++ // '.'
		}
		if e < 0 {
			e = -e
		}
		switch {
		case e < 100:
			n += 2
		default:
			n += 3
		}
		return n
	}
	switch {
	case decpt <= 0:
		return neg + 2 - decpt + nd // 0.000ddd
	case decpt >= nd:
		return neg + decpt + 2 // ddd000.0
	default:
		return neg + nd + 1 // dd.ddd
	}
}

// array parses '[' ... ']'.
func (p *parser) array(i int) (int, int64) {
	p.depth++
	if p.depth > p.c.maxDepth {
		return p.fail(ReasonTooDeep), 0
	}
	s := p.s
	i = p.ws(i + 1)
	if i < 0 {
		return -1, 0
	}
	if i < len(s) && s[i] == ']' {
		p.depth--
		return i + 1, 2
	}
	var total int64 = 2
	for {
		var n int64
		i, n = p.value(i)
		if i < 0 {
			return -1, 0
		}
		total += n
		if i < len(s) && s[i] == ' ' {
			i++
		}
		if i = p.ws(i); i < 0 {
			return -1, 0
		}
		if i >= len(s) {
			return p.fail(ReasonInvalidJSON), 0
		}
		if s[i] == ',' {
			total += 2
			i++
			if i < len(s) && s[i] == ' ' {
				i++
			}
			if i = p.ws(i); i < 0 {
				return -1, 0
			}
			continue
		}
		if s[i] == ']' {
			p.depth--
			return i + 1, total
		}
		return p.fail(ReasonInvalidJSON), 0
	}
}

// object parses '{' ... '}'. At the top level it also records the
// "timestamp" field.
func (p *parser) object(i int, top bool) (int, int64) {
	p.depth++
	if p.depth > p.c.maxDepth {
		return p.fail(ReasonTooDeep), 0
	}
	s := p.s
	c := p.c
	i = p.ws(i + 1)
	if i < 0 {
		return -1, 0
	}
	if i < len(s) && s[i] == '}' {
		p.depth--
		return i + 1, 2
	}
	base := len(c.keys)
	var (
		total   int64 = 2 // braces, then ", " between and "key: value" per key
		indexed bool
	)
	for {
		if i >= len(s) || s[i] != '"' {
			return p.fail(ReasonInvalidJSON), 0
		}
		var k keyEnt
		var ksize int64
		k.start = i + 1
		if p.size {
			i, ksize, k.esc, k.dlen = p.strSize(i)
		} else {
			i, k.esc = p.skipStr(i)
		}
		if i < 0 {
			return -1, 0
		}
		k.end = i - 1
		if !p.size {
			k.dlen = k.end - k.start
		}
		if i < len(s) && s[i] == ':' {
			i++
		} else {
			if i = p.ws(i); i < 0 {
				return -1, 0
			}
			if i >= len(s) || s[i] != ':' {
				return p.fail(ReasonInvalidJSON), 0
			}
			i++
		}
		if i < len(s) && s[i] == ' ' {
			i++
		}
		if i = p.ws(i); i < 0 {
			return -1, 0
		}
		isTS := top && p.isTimestampKey(&k)
		var vsize int64
		if isTS {
			i, vsize = p.tsValue(i)
		} else {
			i, vsize = p.value(i)
		}
		if i < 0 {
			return -1, 0
		}
		if p.size {
			dup := -1
			ents := c.keys[base:]
			if !indexed && len(ents) < linearKeys {
				for j := range ents {
					if p.keyEq(&ents[j], &k) {
						dup = j
						break
					}
				}
			} else {
				if !indexed {
					p.buildIndex(base)
					indexed = true
				}
				k.hash = p.keyHash(&k)
				dup = p.indexFind(base, &k)
			}
			if dup >= 0 {
				total += vsize - ents[dup].val
				ents[dup].val = vsize
			} else {
				if len(ents) > 0 {
					total += 2
				}
				total += ksize + 2 + vsize
				k.val = vsize
				c.keys = append(c.keys, k)
				if indexed {
					p.indexAdd(base, len(c.keys)-1-base)
				}
			}
		}
		if i < len(s) && s[i] == ' ' {
			i++
		}
		if i = p.ws(i); i < 0 {
			return -1, 0
		}
		if i >= len(s) {
			return p.fail(ReasonInvalidJSON), 0
		}
		if s[i] == ',' {
			i++
			if i < len(s) && s[i] == ' ' {
				i++
			}
			if i = p.ws(i); i < 0 {
				return -1, 0
			}
			continue
		}
		if s[i] == '}' {
			c.keys = c.keys[:base]
			p.depth--
			return i + 1, total
		}
		return p.fail(ReasonInvalidJSON), 0
	}
}

const tsKey = "timestamp"

// isTimestampKey reports whether the key decodes to "timestamp".
func (p *parser) isTimestampKey(k *keyEnt) bool {
	raw := p.s[k.start:k.end]
	if !k.esc {
		return string(raw) == tsKey
	}
	if p.size && k.dlen != len(tsKey) {
		return false
	}
	p.c.dec1 = decodeString(p.c.dec1[:0], raw)
	return string(p.c.dec1) == tsKey
}

// tsValue parses the value of a top-level "timestamp" key. A later
// duplicate overrides an earlier one, as in a Python dict.
func (p *parser) tsValue(i int) (int, int64) {
	if i >= len(p.s) {
		return p.fail(ReasonInvalidJSON), 0
	}
	first := p.s[i]
	p.wantNum = true
	j, n := p.value(i)
	p.wantNum = false
	if j < 0 {
		return j, n
	}
	p.tsBad, p.ts, p.tsVal = false, TSNumber, 0
	switch first {
	case 'n':
		p.ts = TSNull
	case 't':
		p.tsVal = 1
	case 'f':
	case '"', '[', '{':
		p.tsBad, p.ts = true, TSMissing
	default:
		p.tsVal = p.num
	}
	return j, n
}

// keyEq reports whether two keys of the current line decode equal.
func (p *parser) keyEq(a, b *keyEnt) bool {
	if a.dlen != b.dlen {
		return false
	}
	ra, rb := p.s[a.start:a.end], p.s[b.start:b.end]
	if !a.esc && !b.esc {
		return bytes.Equal(ra, rb)
	}
	c := p.c
	c.dec1 = decodeString(c.dec1[:0], ra)
	c.dec2 = decodeString(c.dec2[:0], rb)
	return bytes.Equal(c.dec1, c.dec2)
}

func (p *parser) keyHash(k *keyEnt) uint64 {
	raw := p.s[k.start:k.end]
	if k.esc {
		p.c.dec1 = decodeString(p.c.dec1[:0], raw)
		raw = p.c.dec1
	}
	return maphash.Bytes(p.c.seed, raw)
}

// index returns the (cleared on first use per object) hash index of the
// object at the current depth.
func (p *parser) index() map[uint64]int {
	c := p.c
	for len(c.idx) <= p.depth {
		c.idx = append(c.idx, nil)
	}
	m := c.idx[p.depth]
	if m == nil {
		m = make(map[uint64]int)
		c.idx[p.depth] = m
	}
	return m
}

func (p *parser) buildIndex(base int) {
	m := p.index()
	clear(m)
	for j := range p.c.keys[base:] {
		e := &p.c.keys[base+j]
		e.hash = p.keyHash(e)
		p.indexAdd(base, j)
	}
}

// indexAdd links entry j (whose hash is set) into the index.
func (p *parser) indexAdd(base, j int) {
	m := p.c.idx[p.depth]
	e := &p.c.keys[base+j]
	e.next = m[e.hash]
	m[e.hash] = j + 1
}

// indexFind returns the entry equal to k (whose hash is set), or -1.
func (p *parser) indexFind(base int, k *keyEnt) int {
	ents := p.c.keys[base:]
	for j := p.c.idx[p.depth][k.hash]; j != 0; j = ents[j-1].next {
		if ents[j-1].hash == k.hash && p.keyEq(&ents[j-1], k) {
			return j - 1
		}
	}
	return -1
}

// Bit tricks over 8 bytes at a time (little endian: lowest byte first).
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// specialMask flags the bytes of v that end a run of plain string bytes
// in validation mode: < 0x20, '"', '\\' and >= 0x80. The lowest flagged
// byte is exact; higher ones may be false positives.
func specialMask(v uint64) uint64 {
	q := v ^ (lo8 * '"')
	b := v ^ (lo8 * '\\')
	return ((v - lo8*0x20) & ^v) | ((q - lo8) & ^q) | ((b - lo8) & ^b) | v&hi8
}

// sizeSpecialMask also flags '\'' and 0x7f, whose repr costs differ.
func sizeSpecialMask(v uint64) uint64 {
	a := v ^ (lo8 * '\'')
	d := v ^ (lo8 * 0x7f)
	return specialMask(v) | ((a - lo8) & ^a) | ((d - lo8) & ^d)
}

// skipStr validates the string starting at the '"' at s[i]. It reports
// whether the string has escapes.
func (p *parser) skipStr(i int) (int, bool) {
	s := p.s
	i++
	esc := false
	for {
		for i+8 <= len(s) {
			if m := specialMask(binary.LittleEndian.Uint64(s[i:])) & hi8; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < len(s) && plain[s[i]] {
			i++
		}
	special:
		if i >= len(s) {
			return p.fail(ReasonInvalidJSON), false
		}
		switch c := s[i]; {
		case c == '"':
			return i + 1, esc
		case c == '\\':
			var r rune
			if i, r = decodeEscape(s, i); r < 0 {
				return p.fail(ReasonInvalidJSON), false
			}
			esc = true
		case c < 0x20:
			return p.fail(ReasonInvalidJSON), false
		default:
			_, n := decodeUTF8(s, i)
			if n == 0 {
				return p.fail(ReasonInvalidUTF8), false
			}
			i += n
		}
	}
}

// strSize validates the string starting at the '"' at s[i] and returns
// the UTF-8 length of its Python repr, whether it has escapes and its
// decoded length in bytes.
func (p *parser) strSize(i int) (end int, size int64, esc bool, dlen int) {
	s := p.s
	i++
	start := i
	var (
		cost  int // repr bytes, each quote character counted once
		nsq   int // single quotes
		hasDq bool
		dadj  int // decoded length minus raw length
	)
	for {
		run := i
		for i+8 <= len(s) {
			if m := sizeSpecialMask(binary.LittleEndian.Uint64(s[i:])) & hi8; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto special
			}
			i += 8
		}
		for i < len(s) && sizePlain[s[i]] {
			i++
		}
	special:
		cost += i - run
		if i >= len(s) {
			return p.fail(ReasonInvalidJSON), 0, false, 0
		}
		switch c := s[i]; {
		case c == '"':
			if hasDq {
				cost += nsq // the quote is ', so each ' is escaped
			}
			return i + 1, int64(cost + 2), esc, i - start + dadj
		case c == '\'':
			nsq++
			cost++
			i++
		case c == 0x7f:
			cost += 4
			i++
		case c == '\\':
			j, r := decodeEscape(s, i)
			if r < 0 {
				return p.fail(ReasonInvalidJSON), 0, false, 0
			}
			esc = true
			if r < 0x80 {
				switch r {
				case '\'':
					nsq++
				case '"':
					hasDq = true
				}
				cost += int(asciiCost[r])
				dadj += 1 - (j - i)
			} else {
				cost += nonASCIICost(r)
				dadj += wtf8Len(r) - (j - i)
			}
			i = j
		case c < 0x20:
			return p.fail(ReasonInvalidJSON), 0, false, 0
		default:
			r, n := decodeUTF8(s, i)
			if n == 0 {
				return p.fail(ReasonInvalidUTF8), 0, false, 0
			}
			cost += nonASCIICost(r)
			i += n
		}
	}
}

// decodeUTF8 decodes the multi-byte sequence at s[i]; n is 0 if invalid.
func decodeUTF8(s []byte, i int) (rune, int) {
	b0 := s[i]
	if b0 >= 0xc2 && b0 < 0xe0 && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
		return rune(b0&0x1f)<<6 | rune(s[i+1]&0x3f), 2
	}
	r, n := utf8.DecodeRune(s[i:])
	if r == utf8.RuneError && n == 1 {
		return 0, 0
	}
	return r, n
}

// decodeEscape decodes the escape at s[i] == '\\'. It returns the index
// after it and the code point, or r < 0 if invalid. An escaped high
// surrogate immediately followed by an escaped low surrogate decodes to one
// code point; any other surrogate stays alone, as in CPython.
func decodeEscape(s []byte, i int) (int, rune) {
	if i+1 >= len(s) {
		return i, -1
	}
	switch s[i+1] {
	case '"':
		return i + 2, '"'
	case '\\':
		return i + 2, '\\'
	case '/':
		return i + 2, '/'
	case 'b':
		return i + 2, '\b'
	case 'f':
		return i + 2, '\f'
	case 'n':
		return i + 2, '\n'
	case 'r':
		return i + 2, '\r'
	case 't':
		return i + 2, '\t'
	case 'u':
		r := hex4(s, i+2)
		if r < 0 {
			return i, -1
		}
		if r >= 0xd800 && r < 0xdc00 && i+11 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
			r2 := hex4(s, i+8)
			if r2 < 0 {
				return i, -1
			}
			if r2 >= 0xdc00 && r2 < 0xe000 {
				return i + 12, 0x10000 + (r-0xd800)<<10 + (r2 - 0xdc00)
			}
		}
		return i + 6, r
	}
	return i, -1
}

func hex4(s []byte, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, b := range s[i : i+4] {
		d := hexVal[b]
		if d < 0 {
			return -1
		}
		r = r<<4 | rune(d)
	}
	return r
}

// wtf8Len is the length of r in UTF-8, encoding a surrogate like any other
// BMP code point.
func wtf8Len(r rune) int {
	switch {
	case r < 0x80:
		return 1
	case r < 0x800:
		return 2
	case r < 0x10000:
		return 3
	}
	return 4
}

// decodeString appends the decoded form of the validated raw string body
// to dst, surrogates encoded as 3-byte sequences (generalized UTF-8).
func decodeString(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(dst, raw[i:]...)
			}
			dst = append(dst, raw[i:i+j]...)
			i += j
			continue
		}
		j, r := decodeEscape(raw, i)
		if r < 0 {
			// Cannot happen for validated input; keep the bytes.
			return append(dst, raw[i:]...)
		}
		if r >= 0xd800 && r < 0xe000 {
			dst = append(dst, 0xe0|byte(r>>12), 0x80|byte(r>>6)&0x3f, 0x80|byte(r)&0x3f)
		} else {
			dst = utf8.AppendRune(dst, r)
		}
		i = j
	}
	return dst
}
