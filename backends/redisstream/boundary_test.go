package redisstream_test

import (
	"math"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestAgeBoundary: with age_by: timestamp, Papyra's rule decides
// (papyra-formats.md §4.2): keep iff timestamp >= time.time() -
// max_age_seconds, in float arithmetic, time.time() being CPython's float
// of the clock (whole seconds when there is no fraction, float(ns) / 1e9
// otherwise). A record exactly at the cutoff is kept, one ulp below
// removed, one ulp above kept, whatever its ID. By ID (the default), the
// boundary is the millisecond of now - max_age: an entry of that
// millisecond is kept, one of the millisecond before removed.
func TestAgeBoundary(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
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
			pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(tc.maxAge)}, Now: tc.now}

			// By timestamp: IDs all recent, so only the timestamps decide.
			ms := tc.now.UnixMilli() - 1000
			sys := "ts" + tc.name
			write(t, c, "papyra:"+sys+":events", []rec{
				{ms: ms, i: 1, ts: below}, {ms: ms + 1, i: 2, ts: cut}, {ms: ms + 2, i: 3, ts: above},
				{ms: ms + 3, i: 4, ts: below}, {ms: ms + 4, i: 5, ts: cut},
			})
			b := newBackend(t, target([]string{srv.Addr}, system(sys), exact, func(t *config.Target) { t.AgeBy = "timestamp" }))
			st, err := compact(t, b, pol)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := readI(t, c, "papyra:"+sys+":events"), []int{2, 3, 5}; !sameInts(got, want) {
				t.Errorf("by timestamp, cutoff %v: records %v, want %v (at and above kept, one ulp below removed)", cut, got, want)
			}
			if st.RemovedAge != 2 {
				t.Errorf("by timestamp: RemovedAge = %d, want 2", st.RemovedAge)
			}

			// By ID: the millisecond of now - max_age, in exact integer time.
			// Timestamps agree with the IDs (a synchronized writer): the
			// guard that checks the ID boundary against them must not move it.
			cutMS := tc.now.Add(-time.Duration(math.Round(tc.maxAge * 1e9))).UnixMilli()
			sys = "id" + tc.name
			write(t, c, "papyra:"+sys+":events", []rec{
				{ms: cutMS - 1, seq: 7, i: 1, ts: float64(cutMS-1) / 1000}, {ms: cutMS, seq: 0, i: 2, ts: cut}, {ms: cutMS, seq: 1, i: 3, ts: above},
			})
			b = newBackend(t, target([]string{srv.Addr}, system(sys), exact))
			if _, err := compact(t, b, pol); err != nil {
				t.Fatal(err)
			}
			if got, want := readI(t, c, "papyra:"+sys+":events"), []int{2, 3}; !sameInts(got, want) {
				t.Errorf("by ID, cutoff %d ms: records %v, want %v", cutMS, got, want)
			}
		})
	}
}
