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
			p.num, _ = p.float(lit, false)
		}
		return i, int64(len(lit))
	}
	if !p.size && !p.wantNum {
		return i, 0
	}
	var n int
	p.num, n = p.float(lit, p.size)
	return i, int64(n)
}

// float converts a validated JSON number literal to a Python float and,
// if wantLen, returns len(repr(f)). Short literals take a fast path: an
// exact conversion (Clinger) when the mantissa and the power of ten are
// exact doubles, and the repr length straight from the literal's digits
// when they are provably the shortest round-trip digits.
func (p *parser) float(lit []byte, wantLen bool) (f float64, n int) {
	neg, m, e, ok := decimal(lit)
	if !ok {
		f = parseFloat(lit)
		if wantLen {
			n = floatReprLen(f, &p.c.fbuf)
		}
		return f, n
	}
	if m == 0 {
		if neg {
			return math.Copysign(0, -1), 4 // -0.0
		}
		return 0, 3 // 0.0
	}
	for m%10 == 0 {
		m /= 10
		e++
	}
	f, exact := exactFloat(m, e)
	if !exact {
		if f, exact = divPow10(m, -e); !exact {
			f = math.Abs(parseFloat(lit))
		}
	}
	if neg {
		f = -f
	}
	if !wantLen {
		return f, 0
	}
	nd := 1
	for t := m; t >= 10; t /= 10 {
		nd++
	}
	// The value is m × 10**e = 0.d1d2...dn × 10**decpt.
	if decpt := e + nd; decpt > -300 && decpt < 300 {
		// Within the normal range, distinct decimals of at most 15
		// significant digits are distinct doubles (DBL_DIG), so no
		// shorter string rounds to f and the literal's digits are the
		// repr's.
		if nd <= 15 {
			return f, reprLen(neg, nd, decpt)
		}
		// Longer: the literal's digits are the shortest iff neither
		// neighbour with one digit fewer rounds to f (the decimals that
		// round to f form an interval around the literal).
		if nd <= 17 {
			lo, ok1 := exactFloat(m/10, e+1)
			hi, ok2 := exactFloat(m/10+1, e+1)
			if af := math.Abs(f); ok1 && ok2 && lo != af && hi != af {
				return f, reprLen(neg, nd, decpt)
			}
		}
	}
	return f, floatReprLen(f, &p.c.fbuf)
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat returns m × 10**e correctly rounded when both factors are
// exact doubles (one rounding in the multiply or divide).
func exactFloat(m uint64, e int) (float64, bool) {
	if m > 1<<53 || e < -22 || e > 22 {
		return 0, false
	}
	if e >= 0 {
		return float64(m) * pow10[e], true
	}
	return float64(m) / pow10[-e], true
}

var pow10u = [...]uint64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// divPow10 returns m / 10**k correctly rounded, for the case exactFloat
// cannot do that is common in timestamps: a mantissa above 2**53 (17
// significant digits) with a result below 2**53. It estimates the quotient
// in floating point (within an ulp or two) and corrects it with exact
// 128-bit integer arithmetic. ok is false outside that domain.
func divPow10(m uint64, k int) (float64, bool) {
	if k < 1 || k > 19 || m == 0 || m >= 1<<63 {
		return 0, false
	}
	p := pow10u[k]
	f := float64(m) / pow10[k]
	if f >= 1<<53 {
		return 0, false
	}
	for range 4 {
		frac, exp := math.Frexp(f)
		fm := uint64(frac * (1 << 53)) // f = fm × 2**fe, 2**52 <= fm < 2**53
		fe := exp - 53                 // <= 0 since f < 2**53
		if fm == 1<<52 {
			return 0, false // the ulp below a power of two is smaller
		}
		// Compare 2m × 2**-fe with 2fm × 10**k: f is the correctly
		// rounded m/10**k iff they differ by less than 10**k (one ulp
		// of f scaled by 2 × 10**k × 2**-fe), or by exactly that and
		// fm is even.
		sh := uint(1 - fe)
		if bits.Len64(m)+int(sh) > 127 {
			return 0, false
		}
		var lhsHi, lhsLo uint64
		if sh >= 64 {
			lhsHi = m << (sh - 64)
		} else {
			lhsHi, lhsLo = m>>(64-sh), m<<sh
		}
		rhsHi, rhsLo := bits.Mul64(2*fm, p)
		above := lhsHi > rhsHi || lhsHi == rhsHi && lhsLo >= rhsLo // the exact value is >= f
		var dHi, dLo, borrow uint64
		if above {
			dLo, borrow = bits.Sub64(lhsLo, rhsLo, 0)
			dHi, _ = bits.Sub64(lhsHi, rhsHi, borrow)
		} else {
			dLo, borrow = bits.Sub64(rhsLo, lhsLo, 0)
			dHi, _ = bits.Sub64(rhsHi, lhsHi, borrow)
		}
		if dHi == 0 && (dLo < p || dLo == p && fm&1 == 0) {
			return f, true
		}
		if above {
			f = math.Nextafter(f, math.Inf(1))
		} else {
			f = math.Nextafter(f, 0)
		}
	}
	return 0, false
}

// decimal splits a validated JSON number literal: |value| = mant × 10**exp.
// ok is false when it has more than 19 significant digits or an exponent
// beyond ±9999.
func decimal(lit []byte) (neg bool, mant uint64, exp int, ok bool) {
	i := 0
	if lit[0] == '-' {
		neg = true
		i = 1
	}
	nd, frac := 0, false
	for ; i < len(lit); i++ {
		c := lit[i]
		if d := c - '0'; d < 10 {
			if nd == 19 {
				if d != 0 {
					return neg, 0, 0, false
				}
				if !frac {
					exp++
				}
				continue
			}
			mant = mant*10 + uint64(d)
			if mant != 0 {
				nd++
			}
			if frac {
				exp--
			}
			continue
		}
		if c == '.' {
			frac = true
			continue
		}
		// The exponent.
		i++
		eneg := false
		if lit[i] == '-' || lit[i] == '+' {
			eneg = lit[i] == '-'
			i++
		}
		x := 0
		for ; i < len(lit); i++ {
			x = x*10 + int(lit[i]-'0')
			if x > 9999 {
				return neg, 0, 0, false
			}
		}
		if eneg {
			x = -x
		}
		return neg, mant, exp + x, true
	}
	return neg, mant, exp, true
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
	return reprLen(neg == 1, nd, e+1)
}

// reprLen is the length of Python's repr of a finite nonzero float whose
// shortest round-trip digits are nd digits d1...dn with value
// ±0.d1...dn × 10**decpt: scientific notation when decpt <= -4 or
// decpt > 16, with at least two exponent digits.
func reprLen(neg bool, nd, decpt int) int {
	n := 0
	if neg {
		n = 1
	}
	if decpt <= -4 || decpt > 16 {
		n += nd + 2 // digits, 'e', exponent sign
		if nd > 1 {
			n++ // '.'
		}
		if e := decpt - 1; e >= 100 || e <= -100 {
			n += 3
		} else {
			n += 2
		}
		return n
	}
	switch {
	case decpt <= 0:
		return n + 2 - decpt + nd // 0.000ddd
	case decpt >= nd:
		return n + decpt + 2 // ddd000.0
	default:
		return n + nd + 1 // dd.ddd
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
		total   int64  = 2 // braces, then ", " between and "key: value" per key
		indexed bool       // duplicates are found with the hash index
		seen    uint64     // key fingerprints seen so far (linear mode)
	)
	for {
		if i >= len(s) || s[i] != '"' {
			return p.fail(ReasonInvalidJSON), 0
		}
		var k keyEnt
		var ksize int64
		start := i + 1
		if p.size {
			var dlen int
			i, ksize, k.esc, dlen = p.strSize(i)
			k.dlen = int32(dlen)
		} else {
			i, k.esc = p.skipStr(i)
		}
		if i < 0 {
			return -1, 0
		}
		k.start, k.end = int32(start), int32(i-1)
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
			n := len(c.keys) - base
			var h uint64
			if !indexed && n >= linearKeys {
				p.buildIndex(base)
				indexed = true
			}
			if indexed {
				h = p.keyHash(&k)
				dup = p.indexFind(base, h, &k)
			} else {
				var fp uint
				if !k.esc {
					if n := k.end - k.start; n > 0 {
						fp = (uint(n) + uint(s[k.start])*7 + uint(s[k.end-1])*13) & 63
					}
				} else {
					fp = p.keyFingerprint(&k)
				}
				bit := uint64(1) << fp
				if seen&bit != 0 {
					for j := base; j < len(c.keys); j++ {
						if p.keyEq(&c.keys[j], &k) {
							dup = j
							break
						}
					}
				}
				seen |= bit
			}
			if dup >= 0 {
				total += vsize - c.keys[dup].val
				c.keys[dup].val = vsize
			} else {
				if n > 0 {
					total += 2
				}
				total += ksize + 2 + vsize
				// Filled field by field: copying k whole right after its
				// narrow fields were stored stalls store forwarding.
				c.keys = append(c.keys, keyEnt{})
				e := &c.keys[len(c.keys)-1]
				e.start, e.end, e.dlen, e.esc, e.val = k.start, k.end, k.dlen, k.esc, vsize
				if indexed {
					p.indexAdd(len(c.keys)-1, h)
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
	if p.size && k.dlen != int32(len(tsKey)) {
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

// decodedKey returns the decoded bytes of a key (in scratch dst if it has
// escapes).
func (p *parser) decodedKey(k *keyEnt, dst *[]byte) []byte {
	raw := p.s[k.start:k.end]
	if !k.esc {
		return raw
	}
	*dst = decodeString((*dst)[:0], raw)
	return *dst
}

// keyFingerprint is a 6-bit digest of the decoded key: equal keys have
// equal fingerprints.
func (p *parser) keyFingerprint(k *keyEnt) uint {
	d := p.decodedKey(k, &p.c.dec1)
	if len(d) == 0 {
		return 0
	}
	return (uint(len(d)) + uint(d[0])*7 + uint(d[len(d)-1])*13) & 63
}

// keyEq reports whether two keys of the current line decode equal.
func (p *parser) keyEq(a, b *keyEnt) bool {
	if a.dlen != b.dlen {
		return false
	}
	if !a.esc && !b.esc {
		return bytes.Equal(p.s[a.start:a.end], p.s[b.start:b.end])
	}
	return bytes.Equal(p.decodedKey(a, &p.c.dec1), p.decodedKey(b, &p.c.dec2))
}

func (p *parser) keyHash(k *keyEnt) uint64 {
	return maphash.Bytes(p.c.seed, p.decodedKey(k, &p.c.dec1))
}

// buildIndex switches the object whose keys start at base to hash lookups.
// Its index lives at the current depth, where no other object is open.
func (p *parser) buildIndex(base int) {
	c := p.c
	for len(c.idx) <= p.depth {
		c.idx = append(c.idx, nil)
	}
	if c.idx[p.depth] == nil {
		c.idx[p.depth] = make(map[uint64]int32)
	}
	clear(c.idx[p.depth])
	for j := base; j < len(c.keys); j++ {
		p.indexAdd(j, p.keyHash(&c.keys[j]))
	}
}

// indexAdd links entry j, whose key hashes to h, into the index.
func (p *parser) indexAdd(j int, h uint64) {
	c := p.c
	for len(c.khash) <= j {
		c.khash = append(c.khash, 0)
		c.knext = append(c.knext, 0)
	}
	m := c.idx[p.depth]
	c.khash[j] = h
	c.knext[j] = m[h]
	m[h] = int32(j + 1)
}

// indexFind returns the entry whose key equals k (hash h), or -1.
func (p *parser) indexFind(base int, h uint64, k *keyEnt) int {
	c := p.c
	for j := c.idx[p.depth][h]; j != 0; j = c.knext[j-1] {
		e := int(j - 1)
		if e >= base && c.khash[e] == h && p.keyEq(&c.keys[e], k) {
			return e
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

// sizeSpecialMask also flags the single quote and 0x7f, whose repr costs
// differ.
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
