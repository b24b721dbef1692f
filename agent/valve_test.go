package agent

import (
	"errors"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

func TestCheckValve(t *testing.T) {
	frac := func(f float64) *config.Fraction { v := config.Fraction(f); return &v }
	tests := []struct {
		name    string
		valve   *config.Fraction
		stats   backends.Stats
		refused string // "" when the run may go ahead
	}{
		{"Off", nil, backends.Stats{RecordsBefore: 10, RemovedAge: 10}, ""},
		{"EmptyStore", frac(0.1), backends.Stats{}, ""},
		{"Under", frac(0.5), backends.Stats{RecordsBefore: 10_000, RemovedAge: 4_999}, ""},
		{"Exactly", frac(0.57), backends.Stats{RecordsBefore: 100, RemovedAge: 57}, ""},
		{"OneOver", frac(0.5), backends.Stats{RecordsBefore: 10_000, RemovedAge: 5_001},
			"refused by max_remove_fraction (50%): would remove 50.1% of s (5,001 of 10,000 records) — clock jump? config typo? rerun with --force to confirm"},
		{"AllKinds", frac(0.5), backends.Stats{RecordsBefore: 10_000, RemovedAge: 9_000, RemovedCount: 500, RemovedBytes: 200},
			"would remove 97% of s (9,700 of 10,000 records)"},
		// Quarantined corrupt lines are not retention's removals.
		{"QuarantineNotCounted", frac(0.5), backends.Stats{RecordsBefore: 100, RemovedAge: 50, Quarantined: 40}, ""},
		{"Estimated", frac(0.5), backends.Stats{RecordsBefore: 1_000_000, RemovedAge: 900_000, Stream: &backends.StreamStats{Estimated: true}},
			"would remove about 90% of s (900,000 of 1,000,000 records, estimated)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkValve(config.Target{Name: "s", MaxRemoveFraction: tt.valve}, tt.stats)
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("got %v, want ErrRefused saying %q", err, tt.refused)
			}
		})
	}
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		removed, total int64
		want           string
	}{{9_700, 10_000, "97%"}, {5_001, 10_000, "50.1%"}, {7, 7, "100%"}, {1, 1000, "0.1%"}, {123, 1000, "12.3%"}, {1, 1_000_000, "0.1%"}, {1, 3, "33.4%"}, {57, 100, "57%"}} {
		if got := percent(tt.removed, tt.total); got != tt.want {
			t.Errorf("percent(%d, %d): got %s, want %s", tt.removed, tt.total, got, tt.want)
		}
	}
}
