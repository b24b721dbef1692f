// Package bytesize renders byte counts for people, in binary units (KiB,
// MiB, …) everywhere: the progress bar, status, error messages and
// systemd's STATUS= line, so one size reads the same in each.
package bytesize

import (
	"fmt"
	"strconv"
)

// IEC formats n with a binary unit and one decimal: "3.0 GiB".
func IEC(n int64) string { return format(n, 1024, "KMGTPE", "iB") }

func format(n, unit int64, prefixes, suffix string) string {
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := unit, 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %c%s", float64(n)/float64(div), prefixes[exp], suffix)
}

// Count formats a number of things (records, entries) with a comma
// between groups of three digits, as the messages that show sizes beside
// it: "1,204 entries".
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := ""
	if n < 0 {
		neg, s = "-", s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return neg + s
}
