package redisstream_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestGroups(t *testing.T) {
	srv := testutil.StartRedis(t)
	testGroups(t, []string{srv.Addr})
}

// testGroups checks that retention never removes an entry a consumer
// group has pending or has not been delivered yet, and reports what each
// group held back.
func testGroups(t *testing.T, addrs []string) {
	ctx := context.Background()
	c := newClient(t, addrs...)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	now := start.Add(time.Hour)
	removeAll := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	id := func(i int) string { return fmt.Sprintf("%d-0", start.Add(time.Duration(i)*time.Second).UnixMilli()) }

	for _, approx := range []bool{false, true} {
		t.Run(fmt.Sprintf("PendingAndUndelivered/approximate=%v", approx), func(t *testing.T) {
			sys := fmt.Sprintf("groups-%v", approx)
			key := "papyra:" + sys + ":events"
			write(t, c, key, series(start, 1000, time.Second))
			// readers: 0..299 delivered, 0..99 acknowledged, 100..299 pending.
			must(t, c.XGroupCreate(ctx, key, "readers", "0").Err())
			must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "readers", Consumer: "c1", Streams: []string{key, ">"}, Count: 300}).Err())
			var acks []string
			for i := range 100 {
				acks = append(acks, id(i))
			}
			must(t, c.XAck(ctx, key, "readers", acks...).Err())
			// late: created after 499 was written, 500.. not delivered.
			must(t, c.XGroupCreate(ctx, key, "late", id(499)).Err())

			b := newBackend(t, target(addrs, system(sys), func(t *config.Target) { t.Approximate = ptr(approx) }))
			p, err := b.Plan(ctx, removeAll)
			if err != nil {
				t.Fatal(err)
			}
			// XINFO GROUPS lists groups by name.
			wantHeld := []backends.HeldBack{{Stream: key, Group: "late", Entries: 500}, {Stream: key, Group: "readers", Entries: 900}}
			if got := p.Stats().Stream.HeldBack; !sameHeld(got, wantHeld) {
				t.Errorf("planned HeldBack: got %v, want %v", got, wantHeld)
			}
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			got := readI(t, c, key)
			if approx {
				// Whole nodes only: the node holding 100 stays whole.
				if len(got) < 900 || len(got) > 1000 || !sameInts(got[len(got)-900:], seq(100, 1000)) {
					t.Errorf("records: got %d from %v, want 100..999 and less than a node before", len(got), got[:min(5, len(got))])
				}
				// The groups hold back the same entries however the trim
				// rounds, and what it reports removed is what went.
				if !sameHeld(st.Stream.HeldBack, wantHeld) {
					t.Errorf("applied HeldBack: got %v, want %v", st.Stream.HeldBack, wantHeld)
				}
				if removed := int64(1000 - len(got)); st.RemovedAge != removed || st.RecordsAfter != int64(len(got)) {
					t.Errorf("stats: RemovedAge %d, RecordsAfter %d; the stream lost %d and holds %d", st.RemovedAge, st.RecordsAfter, removed, len(got))
				}
			} else {
				if !sameInts(got, seq(100, 1000)) {
					t.Errorf("records: got %v, want 100..999", got)
				}
				if !sameHeld(st.Stream.HeldBack, wantHeld) {
					t.Errorf("applied HeldBack: got %v, want %v", st.Stream.HeldBack, wantHeld)
				}
				if st.RemovedAge != 100 {
					t.Errorf("RemovedAge: got %d, want 100", st.RemovedAge)
				}
			}
			// Every pending entry can still be claimed, with its data.
			msgs, err := c.XClaim(ctx, &redis.XClaimArgs{Stream: key, Group: "readers", Consumer: "c2", Messages: []string{id(100), id(299)}}).Result()
			if err != nil || len(msgs) != 2 || msgs[0].Values["data"] == nil || msgs[1].Values["data"] == nil {
				t.Errorf("XCLAIM of pending entries: got %v, %v, want both with data", msgs, err)
			}
		})
	}

	// Without quarantine a plan by ID reads nothing it does not need: a
	// group with nothing pending is counted exactly from its lag (XINFO
	// GROUPS), one with pending entries is estimated from the IDs
	// (evenly spaced here, so right), marked as an estimate.
	t.Run("CountedWithoutReading", func(t *testing.T) {
		key := "papyra:groups-noscan:events"
		write(t, c, key, series(start, 1000, time.Second))
		must(t, c.XGroupCreate(ctx, key, "readers", "0").Err())
		must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "readers", Consumer: "c1", Streams: []string{key, ">"}, Count: 300}).Err())
		// "late" starts at an arbitrary ID: Redis does not know its
		// lag, so it is estimated too; "fresh" starts at 0 and has read
		// nothing: its lag is the whole stream, exactly.
		must(t, c.XGroupCreate(ctx, key, "late", id(499)).Err())
		must(t, c.XGroupCreate(ctx, key, "fresh", "0").Err())
		b := newBackend(t, target(addrs, system("groups-noscan"), exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
		st, err := compact(t, b, removeAll)
		if err != nil {
			t.Fatal(err)
		}
		want := []backends.HeldBack{{Stream: key, Group: "fresh", Entries: 1000}, {Stream: key, Group: "late", Entries: 500, Estimated: true},
			{Stream: key, Group: "readers", Entries: 1000, Estimated: true}}
		held := st.Stream.HeldBack
		if len(held) != 3 || held[0] != want[0] || held[2] != want[2] ||
			held[1].Group != "late" || !held[1].Estimated || held[1].Entries < 495 || held[1].Entries > 505 {
			t.Errorf("HeldBack: got %v, want %v (late within 1%%)", held, want)
		}
		if n := xlen(t, c, key); n != 1000 {
			t.Errorf("entries: got %d, want 1000 (readers has 0.. pending)", n)
		}
		var marked bool
		for _, n := range st.Notes {
			marked = marked || strings.Contains(n, "about 1000 entries of "+key) && strings.Contains(n, "readers")
		}
		if !marked {
			t.Errorf("notes %q: want the estimate marked \"about\"", st.Notes)
		}
	})

	t.Run("NewGroupAtZeroKeepsEverything", func(t *testing.T) {
		key := "papyra:fresh-group:events"
		write(t, c, key, series(start, 50, time.Second))
		must(t, c.XGroupCreate(ctx, key, "new", "0").Err())
		b := newBackend(t, target(addrs, system("fresh-group"), exact))
		st, err := compact(t, b, removeAll)
		if err != nil {
			t.Fatal(err)
		}
		if n := xlen(t, c, key); n != 50 {
			t.Errorf("entries: got %d, want 50 (none delivered yet)", n)
		}
		if want := []backends.HeldBack{{Stream: key, Group: "new", Entries: 50}}; !sameHeld(st.Stream.HeldBack, want) {
			t.Errorf("HeldBack: got %v, want %v", st.Stream.HeldBack, want)
		}
	})

	// A group created between Plan and Apply is honoured: the floor is
	// read by the trim itself, atomically.
	t.Run("GroupCreatedAfterPlan", func(t *testing.T) {
		key := "papyra:late-group:events"
		write(t, c, key, series(start, 50, time.Second))
		b := newBackend(t, target(addrs, system("late-group"), exact))
		p, err := b.Plan(ctx, removeAll)
		if err != nil {
			t.Fatal(err)
		}
		if p.Stats().Removed() != 50 {
			t.Fatalf("planned removals: got %d, want 50", p.Stats().Removed())
		}
		must(t, c.XGroupCreate(ctx, key, "sneaky", id(19)).Err())
		if _, err := b.Apply(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got := readI(t, c, key); !sameInts(got, seq(20, 50)) {
			t.Errorf("records: got %v, want 20..49", got)
		}
	})

	// Records age drops above the trimmed prefix are deleted one by one,
	// but not those a group still needs.
	t.Run("DeletesRespectFloor", func(t *testing.T) {
		key := "papyra:del-floor:events"
		old, fresh := float64(now.Unix()-7200), float64(now.Unix()-1)
		base := now.Add(-time.Minute).UnixMilli()
		var recs []rec
		for i := range 10 {
			ts := fresh
			if i%2 == 1 {
				ts = old
			}
			recs = append(recs, rec{ms: base + int64(i), i: i, ts: ts})
		}
		write(t, c, key, recs)
		must(t, c.XGroupCreate(ctx, key, "g", fmt.Sprintf("%d-0", base+5)).Err()) // 6.. undelivered
		b := newBackend(t, target(addrs, system("del-floor"), exact, func(t *config.Target) { t.AgeBy = "timestamp" }))
		st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := readI(t, c, key), []int{0, 2, 4, 6, 7, 8, 9}; !sameInts(got, want) {
			t.Errorf("records: got %v, want %v", got, want)
		}
		if want := []backends.HeldBack{{Stream: key, Group: "g", Entries: 2}}; !sameHeld(st.Stream.HeldBack, want) {
			t.Errorf("HeldBack: got %v, want %v", st.Stream.HeldBack, want)
		}
	})
}

func sameHeld(got, want []backends.HeldBack) bool {
	return slices.Equal(got, want)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroups_HeldBackCostBoundedByGroups: counting what 50 groups hold
// back, 10,000 entries each, takes a few commands per group, not reads
// of the held entries (200 groups × 50,000 entries took 13,313 XRANGE
// calls and 294 s).
func TestGroups_HeldBackCostBoundedByGroups(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:local:events"
	now := time.Now().Truncate(time.Millisecond)
	write(t, c, key, series(now.Add(-2*time.Hour), 10_000, time.Millisecond))
	const groups = 50
	for g := range groups {
		must(t, c.XGroupCreate(ctx, key, fmt.Sprintf("g%02d", g), "0").Err())
	}
	b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	slowlogOn(t, c, 100_000)
	p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cmds := agentCommands(t, c)
	if len(cmds) > 3*groups+30 {
		t.Errorf("planning took %d commands for %d groups, want at most %d", len(cmds), groups, 3*groups+30)
	}
	held := p.Stats().Stream.HeldBack
	if len(held) != groups || held[0].Entries != 10_000 || held[0].Estimated {
		t.Errorf("HeldBack: got %d groups, first %+v; want %d, each 10000 exactly (from the lag)", len(held), held[0], groups)
	}
}
