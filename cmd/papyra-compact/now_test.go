package main

import (
	"errors"
	"testing"
	"time"
)

func TestParseNow(t *testing.T) {
	clock := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"Clock", "1796385600", true},
		{"Fraction", "1796385600.25", true},
		{"Past", "1795000000", true},
		{"AlmostADayAhead", "1796471999", true},
		{"ADayAhead", "1796472000", true},
		{"JustOverADayAhead", "1796472001", false},
		{"FarFuture", "1e30", false},
		{"Milliseconds", "1796385600000", false},
		{"Start2001", "978307200", true},
		{"Before2001", "978307199", false},
		{"Zero", "0", false},
		{"Negative", "-1", false},
		{"NaN", "NaN", false},
		{"Inf", "+Inf", false},
		{"NotANumber", "yesterday", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNow(tt.in, clock)
			if tt.ok != (err == nil) {
				t.Fatalf("parseNow(%q): got %v, %v; want ok %v", tt.in, got, err, tt.ok)
			}
			if err != nil && !errors.Is(err, errUsage) {
				t.Errorf("error %v: want a usage error (exit 2)", err)
			}
		})
	}
}
