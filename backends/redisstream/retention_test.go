package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestRetention_ByID(t *testing.T) {
	srv := testutil.StartRedis(t)
	testRetentionByID(t, []string{srv.Addr})
}

// testRetentionByID writes 200 records one second apart, in Papyra's
// format with IDs at their write times, and checks every rule and their
// combination, exactly and approximately, against what Papyra's
// apply_retention keeps.
func testRetentionByID(t *testing.T, addrs []string) {
	c := newClient(t, addrs...)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	now := start.Add(200 * time.Second)
	recs := series(start, 200, time.Second)
	// size of the newest k records, Papyra's way.
	sizeOfLast := func(k int) int64 {
		var total int64
		for _, r := range recs[len(recs)-k:] {
			n, ok := pyjson.ReprSize([]byte(papyra(r.i, r.ts)))
			if !ok {
				t.Fatal("ReprSize failed on a Papyra record")
			}
			total += n
		}
		return total
	}
	tests := []struct {
		name             string
		ret              config.Retention
		want             []int
		age, count, size int64
	}{
		{"None", config.Retention{}, seq(0, 200), 0, 0, 0},
		{"Age", config.Retention{MaxAgeSeconds: ptr(100.5)}, seq(100, 200), 100, 0, 0},
		// The ID boundary keeps an entry written exactly at the cutoff
		// (Papyra, comparing its timestamp 2 ms earlier, would not).
		{"AgeBoundaryKept", config.Retention{MaxAgeSeconds: ptr(100.0)}, seq(100, 200), 100, 0, 0},
		{"AgeAll", config.Retention{MaxAgeSeconds: ptr(0.5)}, []int{}, 200, 0, 0},
		{"Count", config.Retention{MaxRecords: ptr[int64](30)}, seq(170, 200), 0, 170, 0},
		{"CountZeroKeepsAll", config.Retention{MaxRecords: ptr[int64](0)}, seq(0, 200), 0, 0, 0},
		{"CountAboveLength", config.Retention{MaxRecords: ptr[int64](500)}, seq(0, 200), 0, 0, 0},
		{"Bytes", config.Retention{MaxTotalBytes: ptr(sizeOfLast(25) + 10)}, seq(175, 200), 0, 0, 175},
		{"BytesExactFit", config.Retention{MaxTotalBytes: ptr(sizeOfLast(25))}, seq(175, 200), 0, 0, 175},
		{"BytesZero", config.Retention{MaxTotalBytes: ptr[int64](0)}, []int{}, 0, 0, 200},
		{"All", config.Retention{MaxAgeSeconds: ptr(100.5), MaxRecords: ptr[int64](50), MaxTotalBytes: ptr(sizeOfLast(20))},
			seq(180, 200), 100, 50, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, approx := range []bool{false, true} {
				name := "Exact"
				if approx {
					name = "Approximate"
				}
				t.Run(name, func(t *testing.T) {
					sys := "ret-" + tt.name + "-" + name
					key := "papyra:" + sys + ":events"
					write(t, c, key, recs)
					b := newBackend(t, target(addrs, system(sys), func(t *config.Target) { t.Approximate = ptr(approx) }))
					pol := backends.Policy{Retention: tt.ret, Now: now}

					p, err := b.Plan(context.Background(), pol)
					if err != nil {
						t.Fatalf("Plan: %v", err)
					}
					planned := p.Stats()
					if got := readI(t, c, key); len(got) != 200 {
						t.Fatalf("after Plan: got %d records, want 200 (Plan must not write)", len(got))
					}
					st, err := b.Apply(context.Background(), p)
					if err != nil {
						t.Fatalf("Apply: %v", err)
					}
					got := readI(t, c, key)
					if !approx {
						if !sameInts(got, tt.want) {
							t.Errorf("records: got %v, want %v", got, tt.want)
						}
						if st.RemovedAge != tt.age || st.RemovedCount != tt.count || st.RemovedBytes != tt.size {
							t.Errorf("removed age/count/bytes: got %d/%d/%d, want %d/%d/%d",
								st.RemovedAge, st.RemovedCount, st.RemovedBytes, tt.age, tt.count, tt.size)
						}
						// A plan that did not read what it removes
						// estimates from the IDs; here they are evenly
						// spaced, so within one entry.
						if d := planned.Removed() - st.Removed(); d != 0 && (!planned.Stream.Estimated || d < -1 || d > 1) {
							t.Errorf("planned removals: got %d (estimated: %v), want %d as applied", planned.Removed(), planned.Stream.Estimated, st.Removed())
						}
					} else {
						// Whole nodes only: a superset of the exact
						// result, short of it by less than one node.
						extra := len(got) - len(tt.want)
						if extra < 0 || extra >= 100 || !sameInts(got[extra:], tt.want) {
							t.Errorf("records: got %v, want %v preceded by fewer than 100 older ones", got, tt.want)
						}
					}
					if st.RecordsBefore != 200 || st.RecordsAfter != int64(len(got)) {
						t.Errorf("stats: got %d -> %d, want 200 -> %d", st.RecordsBefore, st.RecordsAfter, len(got))
					}
				})
			}
		})
	}
}

// TestRetention_ByTimestamp checks age_by: timestamp, Papyra's exact rule:
// records whose JSON timestamp is old go even when their ID is recent,
// records without a timestamp go, and a monotonic clock is refused.
func TestRetention_ByTimestamp(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now().Truncate(time.Second)
	base := now.Add(-time.Minute).UnixMilli()
	recs := []rec{
		{ms: base, i: 0, ts: float64(now.Unix() - 7200)},     // old
		{ms: base + 1, i: 1, ts: float64(now.Unix() - 10)},   // fresh
		{ms: base + 2, i: 2, ts: float64(now.Unix() - 7200)}, // old, late write
		{ms: base + 3, fields: []any{"data", `{"kind": "event", "i": 3, "timestamp": null}`}},
		{ms: base + 4, i: 4, ts: float64(now.Unix() - 5)},
	}
	write(t, c, "papyra:local:events", recs)
	b := newBackend(t, target([]string{srv.Addr}, exact, func(t *config.Target) { t.AgeBy = "timestamp" }))
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now})
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if got, want := readI(t, c, "papyra:local:events"), []int{1, 4}; !sameInts(got, want) {
		t.Errorf("records: got %v, want %v", got, want)
	}
	if st.RemovedAge != 3 || st.RecordsBefore != 5 || st.RecordsAfter != 2 {
		t.Errorf("stats: got %+v, want 5 -> 2, 3 removed by age", st)
	}

	t.Run("MonotonicClockRefused", func(t *testing.T) {
		write(t, c, "papyra:mono:events", []rec{{ms: base, i: 0, ts: 9253.27}, {ms: base + 1, i: 1, ts: 9254.5}})
		b := newBackend(t, target([]string{srv.Addr}, system("mono"), func(t *config.Target) { t.AgeBy = "timestamp" }))
		_, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now})
		if !errorsIs(err, backends.ErrUnsafe) {
			t.Fatalf("got %v, want ErrUnsafe", err)
		}
		if n := xlen(t, c, "papyra:mono:events"); n != 2 {
			t.Errorf("entries: got %d, want 2 (nothing deleted)", n)
		}
		// Age by ID measures the same store correctly.
		b = newBackend(t, target([]string{srv.Addr}, system("mono"), exact))
		if _, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now}); err != nil {
			t.Fatalf("age by id: %v", err)
		}
		if n := xlen(t, c, "papyra:mono:events"); n != 2 {
			t.Errorf("entries after age by id: got %d, want 2 (written a minute ago)", n)
		}
	})
}

// TestRetention_ClockSkewGuard writes records whose JSON timestamps run
// ahead of their IDs (Papyra's clock ahead of the server's): the age
// boundary is lowered so that no record Papyra's reader would still show
// is trimmed.
func TestRetention_ClockSkewGuard(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now().Truncate(time.Second)
	start := now.Add(-100 * time.Second)
	recs := series(start, 100, time.Second)
	for i := range recs {
		recs[i].ts += 5 // Papyra's host is 5 s ahead
	}
	write(t, c, "papyra:local:events", recs)
	b := newBackend(t, target([]string{srv.Addr}, exact))
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(50.0)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// Cutoff: start+50 s. By ID, 0..49 are older; by timestamp (i+4.998 s)
	// only 0..45.
	if got, want := readI(t, c, "papyra:local:events"), seq(46, 100); !sameInts(got, want) {
		t.Errorf("records: got %v, want %v", got, want)
	}
	if len(st.Notes) == 0 {
		t.Errorf("notes: got none, want one about the lowered age boundary")
	}
}

// TestRetention_ClockSkewGuardGivesUp: 12,000 records below the ID age
// boundary, all with timestamps an hour ahead (Papyra would keep every
// one). The guard looks at no more than the 10,000 newest below the
// boundary (guardMax), lowers it below each, and stops there: the 2,000
// oldest go, 10,000 stay, and a note says so. The same whether the plan
// reads the whole stream (quarantine on: the scan holds those entries
// back until it passes the boundary) or reads below the boundary for the
// guard alone (quarantine off).
func TestRetention_ClockSkewGuardGivesUp(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now().Truncate(time.Second)
	for _, mode := range []struct {
		name string
		mod  func(*config.Target)
	}{
		{"Scan", func(*config.Target) {}},
		{"ByID", func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			sys := "guard-" + strings.ToLower(mode.name)
			key := "papyra:" + sys + ":events"
			recs := series(now.Add(-200*time.Second), 12_000, time.Millisecond)
			for i := range recs {
				recs[i].ts += 3600
			}
			write(t, c, key, recs)
			b := newBackend(t, target([]string{srv.Addr}, system(sys), exact, mode.mod))
			st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(100.0)}, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if got := readI(t, c, key); len(got) != 10_000 || got[0] != 2000 {
				t.Errorf("%d records left from %v; want 10,000 from 2000", len(got), got[:min(1, len(got))])
			}
			if st.RecordsBefore != 12_000 || st.RemovedAge != 2000 || st.Removed() != 2000 {
				t.Errorf("records before %d, removed %d by age (%d in all); want 12,000, 2,000", st.RecordsBefore, st.RemovedAge, st.Removed())
			}
			if !strings.Contains(strings.Join(st.Notes, "\n"), "stopped looking") {
				t.Errorf("notes %q: want one saying the guard stopped looking", st.Notes)
			}
		})
	}
}

// TestRetention_DeleteEmpty: a stream retention empties stays by default;
// with delete_empty it goes, unless a consumer group would go with it.
func TestRetention_DeleteEmpty(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now()
	all := backends.Policy{Retention: config.Retention{MaxTotalBytes: ptr[int64](0)}, Now: now}
	tests := []struct {
		name        string
		deleteEmpty bool
		group       bool
		want        int64 // EXISTS afterwards
	}{
		{"KeptByDefault", false, false, 1},
		{"Deleted", true, false, 0},
		{"KeptForItsGroup", true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := "papyra:" + tt.name + ":events"
			write(t, c, key, series(now.Add(-time.Minute), 5, time.Second))
			if tt.group {
				must(t, c.XGroupCreate(ctx, key, "g", "$").Err())
			}
			b := newBackend(t, target([]string{srv.Addr}, system(tt.name), exact, func(t *config.Target) { t.DeleteEmpty = ptr(tt.deleteEmpty) }))
			if _, err := compact(t, b, all); err != nil {
				t.Fatal(err)
			}
			if got := c.Exists(ctx, key).Val(); got != tt.want {
				t.Errorf("EXISTS %s: got %d, want %d", key, got, tt.want)
			}
			if n := c.XLen(ctx, key).Val(); n != 0 {
				t.Errorf("XLEN: got %d, want 0", n)
			}
		})
	}
}

// TestRetention_MaxLen: a max_records too large to find by walking back
// is applied with XTRIM MAXLEN in bounded steps, exactly or within a node.
func TestRetention_MaxLen(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	for _, approx := range []bool{false, true} {
		sys := fmt.Sprintf("maxlen-%v", approx)
		key := "papyra:" + sys + ":events"
		now, _ := fill(t, c, key, 250_000)
		b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) { t.Approximate = ptr(approx) }))
		st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](120_000)}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		n := xlen(t, c, key)
		if n < 120_000 || !approx && n != 120_000 || n >= 120_100 {
			t.Errorf("approximate=%v: %d entries left, want 120000 (or less than a node more)", approx, n)
		}
		if st.RemovedCount != 250_000-n {
			t.Errorf("approximate=%v: RemovedCount %d, want %d", approx, st.RemovedCount, 250_000-n)
		}
	}
}

// TestRetention_MaxLenAddedDuringRun: max_records beyond what Plan walks,
// with entries Papyra adds between Plan and Apply. Those push more of
// the oldest entries past max_records than the plan read: 5 of 8 MB, an
// unreadable one and small ones. The run still leaves exactly
// max_records (within a node when approximate), counts the unreadable
// entry apart, and never trims entries it did not read first: no trim
// step sizes itself inside the script (a budget in its arguments), none
// is a MAXLEN, and no read asks for two entries after a large one.
func TestRetention_MaxLenAddedDuringRun(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const keep, planned, added, big = 120_000, 50, 104, 8 << 20
	for _, approx := range []bool{false, true} {
		t.Run(fmt.Sprintf("approximate=%v", approx), func(t *testing.T) {
			sys := fmt.Sprintf("maxlen-added-%v", approx)
			key := "papyra:" + sys + ":events"
			at := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			add := func(recs []rec) {
				write(t, c, key, recs)
				at = at.Add(time.Duration(len(recs)) * time.Millisecond)
			}
			// planned small, 5 large, 1 unreadable, then small up to keep+planned.
			add(series(at, planned, time.Millisecond))
			var large []rec
			for j := range 5 {
				ms := at.Add(time.Duration(j) * time.Millisecond).UnixMilli()
				large = append(large, rec{ms: ms, fields: []any{"data", bigRecord(j, float64(ms)/1000, big)}})
			}
			add(large)
			add([]rec{{ms: at.UnixMilli(), fields: []any{"data", "not json"}}})
			add(series(at, keep+planned-planned-5-1, time.Millisecond))
			if n := xlen(t, c, key); n != keep+planned {
				t.Fatalf("wrote %d entries, want %d", n, keep+planned)
			}
			b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) {
				t.Approximate, t.QuarantineCorrupt = ptr(approx), ptr(false)
			}))
			must(t, b.Recover(ctx))
			p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](keep)}, Now: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			add(series(at, added, time.Millisecond)) // Papyra, between Plan and Apply
			slowlogOn(t, c, 100_000)
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			n := xlen(t, c, key)
			if n < keep || !approx && n != keep || n >= keep+100 {
				t.Errorf("%d entries left, want %d (or less than a node more)", n, keep)
			}
			if got := st.Removed(); got != keep+planned+added-n-1 {
				t.Errorf("Removed %d records, want %d (and the unreadable entry)", got, keep+planned+added-n-1)
			}
			if st.Stream == nil || st.Stream.RemovedCorrupt != 1 {
				t.Errorf("RemovedCorrupt: %+v, want 1 (the unreadable entry past the plan)", st.Stream)
			}
			var owed int64
			for _, d := range st.Debt {
				if d.Reason == backends.DebtApproximate {
					owed += d.Records
				}
			}
			if want := n - keep; owed != want {
				t.Errorf("approximate_trim debt %d records, want %d (the entries left past max_records): %+v", owed, want, st.Debt)
			}
			for _, l := range agentCommands(t, c) {
				a := l.Args
				switch {
				case len(a) >= 9 && strings.EqualFold(a[0], "EVALSHA") && a[3] == key && (a[4] != "minid" || a[8] != "0"):
					t.Errorf("%s: a trim step not up to entries read first", describe(l))
				case len(a) >= 3 && strings.EqualFold(a[0], "XTRIM"):
					t.Errorf("%s: a trim outside the scripts", describe(l))
				}
			}
		})
	}
}

// TestRetention_MaxLenRemovedDuringRun: max_records beyond the walk never
// leaves fewer than max_records entries, whoever else removes entries
// between the plan's read of the oldest ones and the trims: the entries
// the plan read are not all beyond max_records any more when others
// deleted newer ones (XDEL by a consumer or by hand) or trimmed the
// oldest while the plan counted (Papyra's XTRIM MAXLEN ~).
func TestRetention_MaxLenRemovedDuringRun(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const keep, planned = 120_000, 2_000
	for _, tc := range []struct {
		name        string
		gone, added int // removed by others, and added by Papyra, between Plan and Apply
		approx      bool
	}{
		{"newest deleted", 500, 0, false},
		{"newest deleted approximate", 500, 0, true},
		{"all planned deleted", planned, 0, false},
		{"more deleted than added", 700, 300, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, key := maxLenPlan(t, c, srv.Addr, "maxlen-removed-"+strings.ReplaceAll(tc.name, " ", "-"), keep, planned, tc.approx)
			newest, err := c.XRevRangeN(ctx, key, "+", "-", int64(tc.gone)).Result()
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(newest))
			for i, m := range newest {
				ids[i] = m.ID
			}
			if err := c.XDel(ctx, key, ids...).Err(); err != nil {
				t.Fatal(err)
			}
			for i := range tc.added {
				must(t, c.XAdd(ctx, xadd(key, papyra(keep+planned+i, float64(time.Now().UnixMilli())/1000))).Err())
			}
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			n := xlen(t, c, key)
			if n < keep || !tc.approx && n != keep || n >= keep+100 {
				t.Errorf("%d entries left, want %d (or less than a node more): never fewer than max_records", n, keep)
			}
			if want := int64(keep+planned-tc.gone+tc.added) - n; st.Removed() != want {
				t.Errorf("Removed %d, want %d", st.Removed(), want)
			}
			if st.RecordsAfter != n {
				t.Errorf("RecordsAfter %d, want %d", st.RecordsAfter, n)
			}
			var owed int64
			for _, d := range st.Debt {
				if d.Reason == backends.DebtApproximate {
					owed += d.Records
				}
			}
			if owed != n-keep {
				t.Errorf("approximate_trim debt %d records, want %d: %+v", owed, n-keep, st.Debt)
			}
		})
	}
}

// TestRetention_MaxLenAgeUnderestimated: with max_records beyond the walk
// and max_age, the plan estimates from the IDs how many entries age
// removes; when more are old than the estimate (a burst of old entries),
// the plan still reads every entry the run removes: the unreadable one
// among them is counted apart, and no trim step sizes itself by reading
// in the script.
func TestRetention_MaxLenAgeUnderestimated(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const keep, old, fresh = 120_000, 40_000, 110_000
	sys := "maxlen-age-burst"
	key := "papyra:" + sys + ":events"
	now := time.Now().Truncate(time.Millisecond)
	// A burst of old entries (1,000 per ms) 61 minutes ago with an
	// unreadable one in its newer half, then fresh entries over the last
	// 50 minutes: the IDs' times put about 2% of the entries below the
	// age boundary (1 hour), where 27% are.
	var recs []rec
	burst := now.Add(-61 * time.Minute).UnixMilli()
	for i := range old {
		ms := burst + int64(i/1000)
		r := rec{ms: ms, seq: int64(i % 1000), i: i, ts: float64(ms-2) / 1000}
		if i == old-5_000 {
			r.fields = []any{"data", "not json"}
		}
		recs = append(recs, r)
	}
	recs = append(recs, series(now.Add(-50*time.Minute), fresh, 25*time.Millisecond)...)
	write(t, c, key, recs)
	if n := xlen(t, c, key); n != old+fresh {
		t.Fatalf("wrote %d entries, want %d", n, old+fresh)
	}
	b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) {
		t.Approximate, t.QuarantineCorrupt = ptr(false), ptr(false)
	}))
	slowlogOn(t, c, 100_000)
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0), MaxRecords: ptr[int64](keep)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if n := xlen(t, c, key); n != fresh {
		t.Errorf("%d entries left, want %d", n, fresh)
	}
	if st.Stream == nil || st.Stream.RemovedCorrupt != 1 {
		t.Errorf("RemovedCorrupt: %+v, want 1", st.Stream)
	}
	if st.Removed() != old-1 || st.RemovedAge != old-1 {
		t.Errorf("Removed %d records, %d by age, want %d, all by age", st.Removed(), st.RemovedAge, old-1)
	}
	for _, l := range agentCommands(t, c) {
		a := l.Args
		if len(a) >= 9 && strings.EqualFold(a[0], "EVALSHA") && a[3] == key && a[8] != "0" {
			t.Errorf("%s: a trim step sized by reading in the script", describe(l))
		}
	}
}

// TestRetention_UnreadableLeftByApproximateTrim: without quarantine, an
// unreadable entry below the boundary that an approximate trim leaves in
// place (part of a node) is not counted as removed, nor as a record left.
func TestRetention_UnreadableLeftByApproximateTrim(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	must(t, c.ConfigSet(ctx, "stream-node-max-entries", "10").Err())
	sys := "unreadable-left"
	key := "papyra:" + sys + ":events"
	at := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	recs := series(at, 300, time.Millisecond)
	recs[152].fields = []any{"data", "not json"}
	recs[40].fields = []any{"data", "[1, 2]"}
	write(t, c, key, recs)
	b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) {
		t.Approximate, t.QuarantineCorrupt = ptr(true), ptr(false)
	}))
	// Age keeps entries 155 and on: nodes of 10 entries leave 150-154.
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: at.Add(time.Hour + 155*time.Millisecond)})
	if err != nil {
		t.Fatal(err)
	}
	n := xlen(t, c, key)
	if n != 150 {
		t.Fatalf("%d entries left, want 150 (145 kept and 5 of a node)", n)
	}
	if st.Stream == nil || st.Stream.RemovedCorrupt != 1 {
		t.Errorf("RemovedCorrupt %+v, want 1 (entry 40; entry 152 is still there)", st.Stream)
	}
	if st.Removed() != 149 {
		t.Errorf("Removed %d records, want 149", st.Removed())
	}
	if st.RecordsAfter != n-1 {
		t.Errorf("RecordsAfter %d, want %d (the unreadable entry left is no record)", st.RecordsAfter, n-1)
	}
}

// TestRetention_MaxLenGroupCreatedDuringRun: a consumer group created
// between Plan and Apply stops max_records beyond the walk at its floor,
// whether the trim is the plan's or the one of entries Papyra added, and
// the run ends (no loop on a trim the floor blocks).
func TestRetention_MaxLenGroupCreatedDuringRun(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const keep, planned, floorAt = 120_000, 2_000, 1_000
	for _, tc := range []struct {
		name   string
		added  int
		approx bool
		groups int // created at the same floor
	}{{"plan", 0, false, 1}, {"added", 500, false, 1}, {"added approximate", 500, true, 1}, {"added approximate two groups", 500, true, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			b, p, key := maxLenPlan(t, c, srv.Addr, "maxlen-group-"+strings.ReplaceAll(tc.name, " ", "-"), keep, planned, tc.approx)
			for i := range tc.added {
				must(t, c.XAdd(ctx, xadd(key, papyra(keep+planned+i, float64(time.Now().UnixMilli())/1000))).Err())
			}
			oldest, err := c.XRangeN(ctx, key, "-", "+", floorAt).Result()
			if err != nil || len(oldest) != floorAt {
				t.Fatalf("XRANGE: %v (%d entries)", err, len(oldest))
			}
			floor := oldest[floorAt-1].ID // delivered up to it: needs the rest
			names := []string{"late", "late2"}[:tc.groups]
			for _, g := range names {
				must(t, c.XGroupCreate(ctx, key, g, floor).Err())
			}
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			n := xlen(t, c, key)
			if want := int64(keep + planned + tc.added - floorAt); n < want || !tc.approx && n != want || n >= want+100 {
				t.Errorf("%d entries left, want %d: the group's floor holds the rest", n, want)
			}
			// Past max_records: what the group holds, and in approximate
			// mode what the trim left below its floor (approximate_trim
			// debt, counted once: not held by the group too).
			var owed, approx int64
			for _, d := range st.Debt {
				switch d.Reason {
				case backends.DebtHeldByGroup:
					owed += d.Records
				case backends.DebtApproximate:
					approx += d.Records
				}
			}
			below, err := c.XRange(ctx, key, "-", floor).Result() // the group has had up to floor
			if err != nil {
				t.Fatal(err)
			}
			if approx != int64(len(below)) || !tc.approx && approx != 0 {
				t.Errorf("approximate_trim debt %d records, want the %d left below the group's floor", approx, len(below))
			}
			if st.Stream == nil || len(st.Stream.HeldBack) != len(names) {
				t.Fatalf("HeldBack %+v, want %d entries for each of %v", st.Stream, n-keep-approx, names)
			}
			for i, h := range st.Stream.HeldBack {
				if h.Group != names[i] || h.Entries != n-keep-approx {
					t.Errorf("HeldBack %+v, want %d entries for group %s", h, n-keep-approx, names[i])
				}
			}
			if owed != int64(len(names))*(n-keep-approx) {
				t.Errorf("held_by_group debt %d records, want %d for each of %v: %+v", owed, n-keep-approx, names, st.Debt)
			}
		})
	}
}

// maxLenPlan fills sys's events stream with keep+extra records and plans
// max_records keep over it, without quarantine (approximate or not):
// max_records beyond the walk. The plan is closed with the test.
func maxLenPlan(t *testing.T, c redis.UniversalClient, addr, sys string, keep, extra int, approx bool) (backends.Backend, backends.Plan, string) {
	t.Helper()
	key := "papyra:" + sys + ":events"
	fill(t, c, key, keep+extra)
	b := newBackend(t, target([]string{addr}, system(sys), func(t *config.Target) {
		t.Approximate, t.QuarantineCorrupt = ptr(approx), ptr(false)
	}))
	p, err := b.Plan(context.Background(), backends.Policy{Retention: config.Retention{MaxRecords: ptr(int64(keep))}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return b, p, key
}

// TestRetention_AgeReadNotEstimated: without quarantine, age by ID reads
// every entry below its boundary (to count the unreadable ones and cut
// the trims), so its plan says exactly what the run removes, unmarked
// as an estimate, even where the IDs are spaced too unevenly for the
// estimate from them (150 entries in the stream's first 10 s, 50 in
// its last 190 s) to hold.
func TestRetention_AgeReadNotEstimated(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:uneven:events"
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	write(t, c, key, series(start, 150, 10*time.Second/150))
	late := series(start.Add(10*time.Second), 50, 190*time.Second/50)
	for i := range late {
		late[i].i += 150
	}
	write(t, c, key, late)
	now := start.Add(200 * time.Second)
	b := newBackend(t, target([]string{srv.Addr}, system("uneven"), exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	p, err := b.Plan(context.Background(), backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(100.0)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	planned := p.Stats()
	st, err := b.Apply(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// Kept: the late entries at or after now-100 s, 10 s + 3.8 s × i.
	if st.RemovedAge != 150+24 || planned.RemovedAge != st.RemovedAge || planned.Stream == nil || planned.Stream.Estimated {
		t.Errorf("planned %d by age (stream stats %+v), applied %d; want 174 both, not estimated", planned.RemovedAge, planned.Stream, st.RemovedAge)
	}
}
