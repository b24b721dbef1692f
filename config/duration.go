package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Duration is a non-negative time.Duration as the configuration spells it:
// Go's syntax ("90s", "1h30m", "1.5h"), plus days and weeks ("7d", "2w",
// "1d12h"), or a bare integer meaning seconds. A day is exactly 24 hours and
// a week 7 days: retention ages are measured on timestamps, not on a
// calendar, so daylight-saving changes do not apply.
type Duration time.Duration

const (
	day  = 24 * time.Hour
	week = 7 * day
)

// durationUnits lists what time.ParseDuration accepts, to tell an unknown
// unit from a malformed number in messages.
var durationUnits = []string{"ns", "us", "µs", "μs", "ms", "s", "m", "h"}

// ParseDuration parses s as a Duration. Its errors are *FieldError values
// without a file, line or field, wrapping ErrInvalidValue.
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, &FieldError{Value: displayDuration(s), Err: err}
	}
	return d, nil
}

func parseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, newProblem(ErrInvalidValue, "invalid duration: empty")
	}
	rest := s
	negative := false
	if rest[0] == '-' || rest[0] == '+' {
		negative = rest[0] == '-'
		rest = rest[1:]
	}
	if rest != "" && strings.Trim(rest, "0123456789") == "" {
		secs, err := strconv.ParseInt(rest, 10, 64)
		if err != nil {
			return 0, errDurationRange
		}
		if negative {
			secs = -secs
		}
		return durationFromSeconds(secs)
	}

	// Go's parser does the numbers and its own units, one number-unit
	// pair at a time; only d and w are scaled here. Summing per pair keeps
	// the overflow check in one place.
	var total time.Duration
	for {
		num, afterNum := splitNumber(rest)
		unit, afterUnit := splitUnit(afterNum)
		if !validNumber(num) {
			return 0, errDurationSyntax
		}
		if unit == "" {
			return 0, newProblem(ErrInvalidValue, "invalid duration: missing unit")
		}
		var part time.Duration
		switch unit {
		case "d", "w":
			hours, err := time.ParseDuration(num + "h")
			scale := time.Duration(24)
			if unit == "w" {
				scale = 7 * 24
			}
			if err != nil || hours > math.MaxInt64/scale {
				return 0, errDurationRange
			}
			part = hours * scale
		default:
			if !slices.Contains(durationUnits, unit) {
				// "5 minutes" or "1h-5m" is not a unit; only a word
				// such as "y" is worth naming.
				if len(unit) > 8 || strings.ContainsFunc(unit, func(r rune) bool { return !unicode.IsLetter(r) }) {
					return 0, errDurationSyntax
				}
				return 0, newProblem(ErrInvalidValue,
					"invalid duration: unknown unit %q; use ns, us, ms, s, m, h, d or w", unit)
			}
			var err error
			// The number is well-formed and the unit known, so the
			// only failure left is overflow.
			if part, err = time.ParseDuration(num + unit); err != nil {
				return 0, errDurationRange
			}
		}
		if total > math.MaxInt64-part {
			return 0, errDurationRange
		}
		total += part
		rest = afterUnit
		if rest == "" {
			break
		}
	}
	if negative && total != 0 {
		return 0, errNegativeDuration
	}
	return Duration(total), nil
}

var (
	errDurationSyntax = newProblem(ErrInvalidValue,
		"invalid duration; write it like 90s, 1h30m, 7d or 2w")
	errDurationRange    = newProblem(ErrInvalidValue, "invalid duration: out of range")
	errNegativeDuration = newProblem(ErrInvalidValue, "must not be negative")
)

// displayDuration shows s in messages; an empty one says so itself.
func displayDuration(s string) string {
	if s == "" {
		return ""
	}
	return display(s)
}

func durationFromSeconds(secs int64) (Duration, error) {
	switch {
	case secs < 0:
		return 0, errNegativeDuration
	case secs > math.MaxInt64/int64(time.Second):
		return 0, errDurationRange
	}
	return Duration(time.Duration(secs) * time.Second), nil
}

// splitNumber splits s after its leading run of digits and dots.
func splitNumber(s string) (num, rest string) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// splitUnit splits s before the next digit or dot.
func splitUnit(s string) (unit, rest string) {
	i := strings.IndexAny(s, "0123456789.")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// validNumber reports whether s is digits with at most one dot and at least
// one digit, the numbers time.ParseDuration accepts.
func validNumber(s string) bool {
	digits := strings.Trim(strings.Replace(s, ".", "", 1), "0123456789")
	return s != "" && s != "." && digits == ""
}

// String formats d so that ParseDuration reads it back: whole days as "d"
// and the rest as time.Duration does, without its trailing zero units
// ("7d", "1d12h", "90s" rather than "168h0m0s", "36h0m0s", "1m30s").
func (d Duration) String() string {
	td := time.Duration(d)
	if td < day {
		return trimZeroUnits(td.String())
	}
	s := strconv.FormatInt(int64(td/day), 10) + "d"
	if rem := td % day; rem != 0 {
		s += trimZeroUnits(rem.String())
	}
	return s
}

func trimZeroUnits(s string) string {
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalYAML implements yaml.Unmarshaler. A YAML integer is seconds; any
// other scalar is parsed by ParseDuration. Its errors are *FieldError values
// carrying the node's line, which Load completes with the file and field.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Line: n.Line, Err: newProblem(ErrWrongType,
			"must be a duration such as 90s or 7d, not %s", kindName(n.Kind))}
	}
	var (
		v   Duration
		err error
	)
	switch n.ShortTag() {
	case "!!null":
		// As yaml.v3 does for every type: null leaves the value alone.
		return nil
	case "!!int":
		// YAML integers also come as 0x1f, 0o17 or 1_000; let yaml
		// read them.
		var secs int64
		if err = n.Decode(&secs); err != nil {
			err = errDurationRange
		} else {
			v, err = durationFromSeconds(secs)
		}
	default:
		v, err = parseDuration(n.Value)
	}
	if err != nil {
		value := ""
		if n.Value != "" {
			value = displayNode(n)
		}
		return &FieldError{Line: n.Line, Value: value, Err: err}
	}
	*d = v
	return nil
}

// MarshalYAML implements yaml.Marshaler, writing d as String does.
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

// FormatSeconds formats a number of seconds, such as a retention's
// max_age_seconds, the way a Duration prints ("30d" for 2592000, "1d12h",
// "2.5s"), so that every message shows an age as the admin would write it.
// A value a Duration cannot hold exactly (a fraction of a nanosecond, more
// than 292 years, NaN) keeps its plain form with an "s".
func FormatSeconds(secs float64) string {
	if secs >= 0 && secs <= math.MaxInt64/1e9 {
		d := time.Duration(math.Round(secs * 1e9))
		if d.Seconds() == secs {
			return Duration(d).String()
		}
	}
	return strconv.FormatFloat(secs, 'g', -1, 64) + "s"
}
