package redisstream_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestPlan_DatesOnlyWhatItReads: with age_by id and quarantine_corrupt
// false a plan reads no record's timestamp, so it reports no ages and no
// future-dated records (documented); with Policy.Explain it reads every
// entry and dates them, and plans the same removals.
func TestPlan_DatesOnlyWhatItReads(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := backendtest.Now
	recs := series(now.Add(-3*24*time.Hour), 6, 12*time.Hour) // 3d ago to 12h ago
	ahead := now.Add(2 * time.Hour)
	recs = append(recs,
		rec{ms: now.UnixMilli(), seq: 1, i: 6, ts: float64(ahead.Unix())},     // future-dated
		rec{ms: now.UnixMilli(), seq: 2, i: 7, ts: math.Inf(1)},               // future-dated, the newest
		rec{ms: now.UnixMilli(), seq: 3, i: 8, ts: float64(now.Unix() + 300)}) // exactly max_clock_skew ahead: not
	write(t, c, "papyra:local:events", recs)
	b := newBackend(t, target([]string{srv.Addr}, exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	pol := backends.Policy{Now: now, MaxClockSkew: 5 * time.Minute, Retention: config.Retention{MaxAgeSeconds: ptr(86400.0)}}
	plan := func(explain bool) backends.Stats {
		t.Helper()
		p := pol
		p.Explain = explain
		pl, err := b.Plan(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		defer pl.Close()
		return pl.Stats()
	}
	by := plan(false)
	if by.Ages != nil || by.Future != 0 {
		t.Errorf("age_by id without quarantine: ages %+v, future %d; want none (no timestamp was read)", by.Ages, by.Future)
	}
	ex := plan(true)
	if ex.Ages == nil || ex.Ages.Total().Records != 9 || ex.Ages.Future.Records != 2 || ex.Ages.Buckets[0].Records != 1 {
		t.Fatalf("explain: ages %+v; want 9 records, 2 future-dated, 1 under an hour", ex.Ages)
	}
	if ex.Future != 2 || !math.IsInf(ex.NewestFuture, 1) {
		t.Errorf("explain: future %d, newest %v; want 2, +Inf", ex.Future, ex.NewestFuture)
	}
	// A run's plan by ID only estimates its counts; what it removes is
	// what explain planned.
	if ex.RemovedAge != 4 || ex.RecordsAfter != 5 {
		t.Errorf("explain planned %d -> %d (age %d): want 9 -> 5, 4 by age", ex.RecordsBefore, ex.RecordsAfter, ex.RemovedAge)
	}
	if _, err := compact(t, b, pol); err != nil {
		t.Fatal(err)
	}
	if n := xlen(t, c, "papyra:local:events"); n != ex.RecordsAfter {
		t.Errorf("a run left %d entries, explain said %d", n, ex.RecordsAfter)
	}
}
