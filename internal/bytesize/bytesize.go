// Package bytesize renders byte counts for people: binary units (KiB,
// MiB, …) in the progress bar, status and error messages, decimal ones
// (kB, MB, …) in systemd's STATUS= line.
package bytesize

import "fmt"

// IEC formats n with a binary unit and one decimal: "3.0 GiB".
func IEC(n int64) string { return format(n, 1024, "KMGTPE", "iB") }

// SI formats n with a decimal unit and one decimal: "2.1 GB".
func SI(n int64) string { return format(n, 1000, "kMGTPE", "B") }

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
