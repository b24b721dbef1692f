package segments_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// TestBackend_AgeBoundary: Papyra keeps a record iff timestamp >= cutoff,
// cutoff = time.time() - max_age_seconds in float arithmetic
// (papyra-formats.md §4.2; time.time() is CPython's float of the clock,
// whole seconds when there is no fraction, float(ns) / 1e9 otherwise).
// A record exactly at the cutoff is kept, one ulp below removed, one ulp
// above kept: inside the active file, in a boundary segment, and as the
// newest record of a segment (kept whole at the cutoff, dropped whole one
// ulp below).
func TestBackend_AgeBoundary(t *testing.T) {
	for _, tc := range []struct {
		name   string
		now    time.Time
		maxAge float64
	}{
		{"WholeSeconds", time.Unix(1795000000, 0), 86400},
		{"Fractional", time.Unix(1795000000, 250_000_000), 86400.5},
		{"InexactMaxAge", time.Unix(1795000000, 0), 0.1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := tc.now.UnixNano()
			now := float64(ns) / 1e9
			if ns%1e9 == 0 {
				now = float64(ns / 1e9)
			}
			cut := now - tc.maxAge
			below, above := math.Nextafter(cut, math.Inf(-1)), math.Nextafter(cut, math.Inf(1))
			active := lay(t, layout{
				4: rec(1, below) + rec(2, below), // dropped whole
				3: rec(3, below) + rec(4, cut),   // kept from the cutoff on
				2: rec(5, cut),                   // kept whole
				1: rec(6, below) + rec(7, above),
				0: rec(8, below) + rec(9, cut) + rec(10, above),
			})
			b := newBackend(t, active, 1<<20, 6)
			ctx := context.Background()
			p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(tc.maxAge)}, Now: tc.now})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got := storeIs(t, active)
			want := []int{4, 5, 7, 9, 10}
			if len(got) != len(want) {
				t.Fatalf("cutoff %v: store holds records %v, want %v (at and above the cutoff kept, one ulp below removed)", cut, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("cutoff %v: store holds records %v, want %v", cut, got, want)
				}
			}
			if st.RemovedAge != 5 {
				t.Errorf("RemovedAge = %d, want 5", st.RemovedAge)
			}
		})
	}
}
