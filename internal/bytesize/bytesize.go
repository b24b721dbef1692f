// Package bytesize renders byte counts for people, in binary units (KiB,
// MiB, …) everywhere: the progress bar, status, error messages and
// systemd's STATUS= line, so one size reads the same in each.
package bytesize

import "fmt"

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
