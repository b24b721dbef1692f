package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestFigures_OldestKeptHeldBack: entries ten days old that a consumer
// group still needs are kept, and "oldest kept" is theirs, planned and
// applied, whether the plan read the stream whole (quarantine, the
// default) or by ID. It is what oldest_record_age_seconds exports, and
// what an alert on a group falling behind relies on.
func TestFigures_OldestKeptHeldBack(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now().Truncate(time.Millisecond)
	old := now.Add(-10 * 24 * time.Hour)
	for _, quarantine := range []bool{true, false} {
		sys := map[bool]string{true: "held-scan", false: "held-id"}[quarantine]
		t.Run(sys, func(t *testing.T) {
			key := "papyra:" + sys + ":events"
			recs := series(old, 10, time.Second)
			fresh := series(now.Add(-time.Minute), 10, time.Second)
			for i := range fresh {
				fresh[i].i = 10 + i
			}
			write(t, c, key, append(recs, fresh...))
			must(t, c.XGroupCreate(ctx, key, "slow", "0").Err())
			must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "slow", Consumer: "c", Streams: []string{key, ">"}, Count: 3}).Err())
			b := newBackend(t, target([]string{srv.Addr}, system(sys), exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(quarantine) }))
			pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now}
			p, err := b.Plan(ctx, pol)
			if err != nil {
				t.Fatal(err)
			}
			if ps := p.Stats(); !ps.HasOldest || ps.OldestKept != recs[0].ts {
				t.Errorf("planned oldest kept: %v (%v), want %v, the oldest entry the group holds", ps.OldestKept, ps.HasOldest, recs[0].ts)
			}
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if n := xlen(t, c, key); n != 20 {
				t.Errorf("entries: %d, want 20 (all held back)", n)
			}
			if !st.HasOldest || st.OldestKept != recs[0].ts {
				t.Errorf("oldest kept: %v (%v), want %v, the oldest entry the group holds", st.OldestKept, st.HasOldest, recs[0].ts)
			}
			if st.RecordsAfter != 20 || st.Removed() != 0 {
				t.Errorf("records %d -> %d, removed %d; want 20 -> 20, none", st.RecordsBefore, st.RecordsAfter, st.Removed())
			}
		})
	}
}

// TestFigures_MeasuredAtTheEnd: entries Papyra appends during the run are
// in "records after", which is what the master holds at the end, not the
// planned count minus what the commands said they removed.
func TestFigures_MeasuredAtTheEnd(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:local:events"
	now := oldStream(t, c, key, 5000)
	b := newBackend(t, target([]string{srv.Addr}, slowTrim, exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	appended := false
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	pol.Progress = func(s backends.Step) {
		if s.Phase == "trim" && !appended {
			appended = true
			for i := range 50 {
				must(t, c.XAdd(ctx, xadd(key, papyra(i, float64(time.Now().UnixNano())/1e9))).Err())
			}
		}
	}
	st, err := compact(t, b, pol)
	if err != nil {
		t.Fatal(err)
	}
	if !appended {
		t.Fatal("the run never trimmed; the test proves nothing")
	}
	if n := xlen(t, c, key); st.RecordsAfter != n || n != 50 {
		t.Errorf("records after: %d, the stream holds %d; want both 50", st.RecordsAfter, n)
	}
	if st.RecordsBefore != 5000 || st.Removed() != 5000 {
		t.Errorf("records before %d, removed %d; want 5000, 5000", st.RecordsBefore, st.Removed())
	}
}
