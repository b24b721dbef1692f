package jsonl_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// ageBoundaries are clocks and max_age values for the age boundary tests,
// with the cutoff Papyra computes (papyra-formats.md §4.2: cutoff =
// time.time() - max_age_seconds in float arithmetic, a record kept iff
// timestamp >= cutoff). The last one's cutoff is not a round number: the
// float subtraction itself decides it.
var ageBoundaries = []struct {
	name   string
	now    time.Time
	maxAge float64
}{
	{"WholeSeconds", time.Unix(1795000000, 0), 86400},
	{"Fractional", time.Unix(1795000000, 250_000_000), 86400.5},
	{"InexactMaxAge", time.Unix(1795000000, 0), 0.1},
}

// papyraCutoff is Papyra's cutoff for a clock and max_age: time.time()
// minus max_age_seconds, in float arithmetic. CPython's time.time()
// (_PyTime_AsSecondsDouble) turns the clock's nanoseconds into a float
// as whole seconds when there is no fraction and as float(ns) / 1e9
// otherwise, which for the Fractional clock is one ulp below
// 1795000000.25: the test holds the backend to that value.
func papyraCutoff(now time.Time, maxAge float64) float64 {
	ns := now.UnixNano()
	secs := float64(ns) / 1e9
	if ns%1e9 == 0 {
		secs = float64(ns / 1e9)
	}
	return secs - maxAge
}

// TestBackend_AgeBoundary: a record stamped exactly at the cutoff is
// kept, one ulp below it removed, one ulp above kept, wherever it sits in
// the file.
func TestBackend_AgeBoundary(t *testing.T) {
	for _, tc := range ageBoundaries {
		t.Run(tc.name, func(t *testing.T) {
			cut := papyraCutoff(tc.now, tc.maxAge)
			below, above := math.Nextafter(cut, math.Inf(-1)), math.Nextafter(cut, math.Inf(1))
			path := filepath.Join(t.TempDir(), "events.ndjson")
			write(t, path, lines(rec(1, below), rec(2, cut), rec(3, above), rec(4, below), rec(5, cut)), 0o644)
			b := newBackend(t, path)
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
			if got, want := read(t, path), lines(rec(2, cut), rec(3, above), rec(5, cut)); got != want {
				t.Errorf("cutoff %s: store\n%s\nwant (at and above the cutoff kept, one ulp below removed)\n%s", fmt.Sprint(cut), got, want)
			}
			if st.RemovedAge != 2 {
				t.Errorf("RemovedAge = %d, want 2", st.RemovedAge)
			}
		})
	}
}
