package pyjson

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"unicode/utf8"
)

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
