package config

import (
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fraction is a share of a whole in (0, 1], as the configuration spells
// it: a number (0.5) or a percentage ("50%"). max_remove_fraction uses it.
type Fraction float64

// String formats f as a percentage, as messages show it.
func (f Fraction) String() string {
	return strconv.FormatFloat(float64(f)*100, 'f', -1, 64) + "%"
}

// parseFraction parses a number or a percentage and checks the range.
func parseFraction(s string) (Fraction, *problem) {
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, newProblem(ErrInvalidValue, `must be a number in (0, 1] such as 0.5, or a percentage such as "50%%"`)
	}
	if pct {
		v /= 100
	}
	if v <= 0 || v > 1 {
		return 0, newProblem(ErrInvalidValue, `must be > 0 and <= 1 (or > 0%% and <= 100%%)`)
	}
	return Fraction(v), nil
}

// UnmarshalYAML implements yaml.Unmarshaler. Its errors are *FieldError
// values carrying the node's line, which Load completes with the file and
// field.
func (f *Fraction) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.ScalarNode {
		return &FieldError{Line: n.Line, Err: newProblem(ErrWrongType,
			`must be a number such as 0.5 or a percentage such as "50%%", not %s`, kindName(n.Kind))}
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!int", "!!float", "!!str":
	default:
		return &FieldError{Line: n.Line, Value: displayNode(n), Err: newProblem(ErrWrongType,
			`must be a number such as 0.5 or a percentage such as "50%%"`)}
	}
	v, p := parseFraction(n.Value)
	if p != nil {
		return &FieldError{Line: n.Line, Value: displayNode(n), Err: p}
	}
	*f = v
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (f Fraction) MarshalYAML() (any, error) {
	return float64(f), nil
}
