package pyjson

import (
	"bytes"
	"hash/maphash"
	"math"
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
