package pyjson

import (
	"math"
	"math/bits"
	"strconv"
	"unsafe"
)

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
