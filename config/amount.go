package config

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Amount is a quantity of bytes as the configuration spells it: a byte
// count (an integer, or a number with a unit: "10MiB", "1.5G", "512k";
// K/M/G/T are powers of 1000, Ki/Mi/Gi/Ti powers of 1024, a trailing "B"
// is optional) or a percentage of a whole ("5%") that the field names:
// min_reclaim a percentage of the store, keep_free of the file system.
type Amount struct {
	// Bytes is the byte count when Percent is 0.
	Bytes int64
	// Percent is the share of the whole, in (0, 100]; 0 means Bytes.
	Percent float64
}

// Of returns the amount in bytes for a whole of total bytes: Bytes, or
// Percent of total rounded up (so that "1%" of anything non-empty is at
// least a byte).
func (a Amount) Of(total int64) int64 {
	if a.Percent == 0 {
		return a.Bytes
	}
	return int64(math.Ceil(float64(max(total, 0)) * a.Percent / 100))
}

// IsZero reports whether the amount is zero bytes (or unset).
func (a Amount) IsZero() bool { return a.Bytes == 0 && a.Percent == 0 }

// String formats a as the configuration would spell it.
func (a Amount) String() string {
	if a.Percent != 0 {
		return strconv.FormatFloat(a.Percent, 'f', -1, 64) + "%"
	}
	return strconv.FormatInt(a.Bytes, 10)
}

var amountUnits = []struct {
	suffix string
	mult   float64
}{
	// Longest first, so that "KiB" is not read as "B".
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"ki", 1 << 10}, {"mi", 1 << 20}, {"gi", 1 << 30}, {"ti", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"t", 1e12},
	{"b", 1},
}

// parseAmount parses a byte count or a percentage.
func parseAmount(s string) (Amount, *problem) {
	const want = `must be a byte count such as 10485760, "10MiB" or "1G", or a percentage such as "5%%"`
	s = strings.TrimSpace(s)
	if num, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return Amount{}, newProblem(ErrInvalidValue, want)
		}
		if v < 0 || v > 100 {
			return Amount{}, newProblem(ErrInvalidValue, "must be between 0%% and 100%%")
		}
		if v == 0 {
			return Amount{}, nil
		}
		return Amount{Percent: v}, nil
	}
	lower := strings.ToLower(s)
	mult := 1.0
	for _, u := range amountUnits {
		if n, ok := strings.CutSuffix(lower, u.suffix); ok {
			lower, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	if mult == 1 {
		// A plain count must be an integer: "1.5" bytes is a typo.
		n, err := strconv.ParseInt(lower, 10, 64)
		if err != nil {
			return Amount{}, newProblem(ErrInvalidValue, want)
		}
		if n < 0 {
			return Amount{}, newProblem(ErrInvalidValue, "must be >= 0")
		}
		return Amount{Bytes: n}, nil
	}
	v, err := strconv.ParseFloat(lower, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return Amount{}, newProblem(ErrInvalidValue, want)
	}
	if v < 0 {
		return Amount{}, newProblem(ErrInvalidValue, "must be >= 0")
	}
	b := math.Ceil(v * mult)
	if b >= math.MaxInt64 {
		return Amount{}, newProblem(ErrInvalidValue, "is too large")
	}
	return Amount{Bytes: int64(b)}, nil
}

// UnmarshalYAML implements yaml.Unmarshaler. Its errors are *FieldError
// values carrying the node's line, which Load completes with the file and
// field.
func (a *Amount) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Line: n.Line, Err: newProblem(ErrWrongType,
			`must be a byte count such as "10MiB" or a percentage such as "5%%", not %s`, kindName(n.Kind))}
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!int", "!!float", "!!str":
	default:
		return &FieldError{Line: n.Line, Value: displayNode(n), Err: newProblem(ErrWrongType,
			`must be a byte count such as "10MiB" or a percentage such as "5%%"`)}
	}
	v, p := parseAmount(n.Value)
	if p != nil {
		return &FieldError{Line: n.Line, Value: displayNode(n), Err: p}
	}
	*a = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (a Amount) MarshalYAML() (any, error) {
	if a.Percent != 0 {
		return a.String(), nil
	}
	return a.Bytes, nil
}
