package pyjson

import (
	"sort"
	"sync"
	"unicode"
)

var (
	// plain marks the bytes that need no attention inside a string when
	// only validating.
	plain [256]bool
	// sizePlain marks the bytes that cost exactly one repr byte and need
	// no attention when measuring.
	sizePlain [256]bool
	// asciiCost is the repr cost of a decoded ASCII character inside a
	// string, counting a quote character as 1.
	asciiCost [128]uint8
	// hexVal is the value of a hex digit, or -1.
	hexVal [256]int8
	// bmpPrint is a bitmap of the BMP characters that Python 3.11's
	// str.isprintable() accepts.
	bmpPrint [0x10000 / 64]uint64

	tablesOnce sync.Once
)

func init() {
	for b := 0; b < 256; b++ {
		plain[b] = b >= 0x20 && b < 0x80 && b != '"' && b != '\\'
		sizePlain[b] = b >= 0x20 && b < 0x7f && b != '"' && b != '\\' && b != '\''
		hexVal[b] = -1
		switch {
		case b >= '0' && b <= '9':
			hexVal[b] = int8(b - '0')
		case b >= 'a' && b <= 'f':
			hexVal[b] = int8(b - 'a' + 10)
		case b >= 'A' && b <= 'F':
			hexVal[b] = int8(b - 'A' + 10)
		}
	}
	for r := 0; r < 128; r++ {
		switch {
		case r == '\\', r == '\t', r == '\n', r == '\r':
			asciiCost[r] = 2 // \\ \t \n \r
		case r < 0x20 || r == 0x7f:
			asciiCost[r] = 4 // \xhh
		default:
			asciiCost[r] = 1
		}
	}
}

// initTables builds the printable bitmap on first use (about 65 536
// lookups in Go's Unicode tables).
func initTables() {
	tablesOnce.Do(func() {
		for r := rune(0); r < 0x10000; r++ {
			if isPrintableSlow(r) {
				bmpPrint[r>>6] |= 1 << (r & 63)
			}
		}
	})
}

// isPrintableSlow is Python 3.11's str.isprintable() for one character:
// false for categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs other than the
// space, under Unicode 14.0. Go's unicode.IsPrint uses the same rule under
// Go's (newer) Unicode version, so characters assigned after 14.0 are
// excluded with unicode14Unassigned.
func isPrintableSlow(r rune) bool {
	if !unicode.IsPrint(r) {
		return false
	}
	t := unicode14Unassigned
	i := sort.Search(len(t), func(i int) bool { return t[i][1] >= r })
	return i == len(t) || r < t[i][0]
}

// IsPrintable reports whether Python 3.11's str.isprintable() is true for
// the single character r (lone surrogates are not printable).
func IsPrintable(r rune) bool {
	if r < 0x10000 && r >= 0 {
		initTables()
		return bmpPrint[r>>6]&(1<<(r&63)) != 0
	}
	return isPrintableSlow(r)
}

// nonASCIICost is the repr cost of a character >= 0x80 inside a string:
// its UTF-8 length if printable, else the length of \xhh, \uhhhh or
// \Uhhhhhhhh.
func nonASCIICost(r rune) int {
	if r < 0x10000 {
		if bmpPrint[r>>6]&(1<<(r&63)) != 0 {
			if r < 0x800 {
				return 2
			}
			return 3
		}
		if r < 0x100 {
			return 4
		}
		return 6
	}
	if isPrintableSlow(r) {
		return 4
	}
	return 10
}
