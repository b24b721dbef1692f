package redisstream

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestPlanScan_Model: the streaming plan (planScan, which keeps counts
// and walks back for max_records and max_total_bytes) decides exactly
// what the whole-stream model decides: every entry held in memory, then
// Papyra's apply_retention applied to the slice, as the plan did before
// it streamed. Random streams mix every kind of entry (records dated in
// and out of order, future-dated and undated ones, unreadable entries of
// each kind, entries nested too deeply to tell, with and without a
// timestamp; sizes from tens of bytes to kilobytes), under random
// policies, in both modes that scan (quarantine, age_by timestamp), with
// consumer groups whose floors fall anywhere. Any difference in the
// boundary, the deletions, what is quarantined or left in place, or a
// figure fails it.
func TestPlanScan_Model(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	seeds := 2000
	if testing.Short() {
		seeds = 500
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		key := fmt.Sprintf("papyra:model-%d:events", seed)
		now := time.Now()
		// One stream in five is dated all out of order, aged by
		// timestamp, with max_records and a small deleteMax: walks
		// back that find more records to delete than a run deletes.
		disorder := r.IntN(5) == 0
		skewed := []int{0, 6, 2}[r.IntN(3)]
		if disorder {
			skewed = 2
		}
		entries := randomStream(r, now, skewed)
		pipe := c.Pipeline()
		for _, e := range entries {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: e.id, Values: e.fields})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatalf("seed %d: XADD: %v", seed, err)
		}
		randomGroups(t, r, c, key, entries)

		// Duty cycle 1: no pauses between reads (they change nothing
		// the plan decides).
		tgt := config.Target{Name: "t", Kind: config.KindRedis, Addrs: []string{srv.Addr},
			QuarantineCorrupt: ptrTo(r.IntN(3) > 0), DutyCycle: ptrTo(1.0)}
		if r.IntN(3) == 0 || disorder {
			tgt.AgeBy = "timestamp"
		}
		if r.IntN(4) == 0 {
			tgt.BatchSize = ptrTo(int64(1 + r.IntN(7)))
		}
		be, err := New(tgt, backends.Env{})
		if err != nil {
			t.Fatal(err)
		}
		b := be.(*Backend)
		if r.IntN(4) == 0 {
			b.cfg.quarantineMax = r.IntN(6) // a backlog of unreadable entries
		}
		if r.IntN(4) == 0 || disorder {
			b.cfg.deleteMax = r.IntN(6) // and of records to delete
		}
		pol := randomPolicy(r, now, entries)
		if disorder && pol.Retention.MaxRecords == nil {
			pol.Retention.MaxRecords = ptrTo(1 + r.Int64N(int64(len(entries))))
		}
		if !b.cfg.quarantine && !b.cfg.ageByTimestamp {
			pol.Explain = true // the third reason to scan
		}
		desc := fmt.Sprintf("seed %d (%d entries, quarantine %v (at most %d), delete at most %d, age_by timestamp %v, max_age %v, max_records %v, max_total_bytes %v)",
			seed, len(entries), b.cfg.quarantine, b.cfg.quarantineMax, b.cfg.deleteMax, b.cfg.ageByTimestamp, deref(pol.Retention.MaxAgeSeconds), deref(pol.Retention.MaxRecords), deref(pol.Retention.MaxTotalBytes))

		got, gotErr := scanPlanOf(ctx, b, key, pol, b.planScan)
		want, wantErr := scanPlanOf(ctx, b, key, pol, b.modelScan)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("%s: plan error %v, model error %v", desc, gotErr, wantErr)
		}
		if gotErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%s: plan differs from the model:\n plan  %+v\n model %+v", desc, got, want)
		}
		b.Close()
		c.Del(ctx, key)
	}
}

func ptrTo[T any](v T) *T { return &v }

func deref[T any](p *T) any {
	if p == nil {
		return "-"
	}
	return *p
}

// scanPlanView is what a scan plan decided, with empty lists as nil.
type scanPlanView struct {
	Boundary, ReadBelow                    streamID
	Cuts, Del, HeldDel, UnreadableIDs      []streamID
	Corrupt, UnreadableLog                 []corruptEntry
	Unreadable, KeptUnreadable, KeptUnsure int64
	Scan                                   scanCounts
	Stats                                  backends.Stats
	Backlog                                backends.Debt
}

// scanPlanOf plans key as planStream does with a scan, by scan (the
// plan's or the model's), through holdBack.
func scanPlanOf(ctx context.Context, b *Backend, key string, pol backends.Policy,
	scan func(context.Context, *streamPlan, backends.Policy, *progress) error) (scanPlanView, error) {
	sp, err := b.ends(ctx, "model", key)
	if err != nil {
		return scanPlanView{}, err
	}
	if sp.groups, err = b.floors(ctx, key); err != nil {
		return scanPlanView{}, err
	}
	sp.stats.RecordsBefore = sp.length
	if err := scan(ctx, sp, pol, &progress{}); err != nil {
		return scanPlanView{}, err
	}
	if err := b.holdBack(ctx, sp); err != nil {
		return scanPlanView{}, err
	}
	v := scanPlanView{
		Boundary: sp.boundary, ReadBelow: sp.readBelow,
		Cuts: nilIfEmpty(sp.cuts), Del: nilIfEmpty(sp.del), HeldDel: nilIfEmpty(sp.heldDel), UnreadableIDs: nilIfEmpty(sp.unreadableIDs),
		Corrupt: nilIfEmpty(sp.corrupt), UnreadableLog: nilIfEmpty(sp.unreadableLog),
		Unreadable: sp.unreadable, KeptUnreadable: sp.keptUnreadable, KeptUnsure: sp.keptUnsure,
		Stats: sp.stats, Backlog: sp.backlog,
	}
	if sp.scan != nil {
		v.Scan = *sp.scan
	}
	return v, nil
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

// modelEntry is one entry of a random stream.
type modelEntry struct {
	id     string
	fields []any
}

// randomStream writes 1 to 300 entries, 1 to 200 ms apart, ending about
// now: mostly Papyra records dated a little before their ID (one in
// skewed up to 10 s either way; 0: none), some in the future, some
// undated, and unreadable or too deeply nested entries.
func randomStream(r *rand.Rand, now time.Time, skewed int) []modelEntry {
	n := 1 + r.IntN(300)
	ms := now.Add(-time.Duration(n) * 100 * time.Millisecond).UnixMilli()
	var out []modelEntry
	seq := 0
	for i := range n {
		if r.IntN(5) == 0 {
			seq++
		} else {
			ms += int64(1 + r.IntN(200))
			seq = 0
		}
		ts := float64(ms-int64(r.IntN(5))) / 1000
		if skewed > 0 && r.IntN(skewed) == 0 {
			ts += float64(r.IntN(20001)-10000) / 1000
		}
		tsText := strconv.FormatFloat(ts, 'f', -1, 64)
		pad := strings.Repeat("x", r.IntN(4)*r.IntN(700))
		var fields []any
		switch k := r.IntN(100); {
		case k < 5:
			fields = []any{"data", "not json " + pad}
		case k < 8:
			fields = []any{"payload", fmt.Sprintf(`{"i": %d}`, i)}
		case k < 10:
			fields = []any{"data", "[1, 2, 3]"}
		case k < 13:
			deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
			fields = []any{"data", fmt.Sprintf(`{"kind": "event", "payload": {"i": %d, "deep": %s}, "timestamp": %s}`, i, deep, tsText)}
		case k < 15:
			deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
			fields = []any{"data", fmt.Sprintf(`{"kind": "event", "payload": {"i": %d, "deep": %s}}`, i, deep)}
		case k < 18:
			fields = []any{"data", fmt.Sprintf(`{"kind": "event", "payload": {"i": %d, "pad": %q}}`, i, pad)}
		case k < 20:
			fields = []any{"data", fmt.Sprintf(`{"kind": "event", "payload": {"i": %d}, "timestamp": %s}`, i, strconv.FormatFloat(float64(now.Add(time.Hour).Unix()), 'f', -1, 64))}
		default:
			fields = []any{"data", fmt.Sprintf(`{"kind": "event", "payload": {"i": %d, "pad": %q}, "timestamp": %s}`, i, pad, tsText)}
		}
		out = append(out, modelEntry{id: fmt.Sprintf("%d-%d", ms, seq), fields: fields})
	}
	return out
}

// randomGroups creates up to three consumer groups at random entries,
// some with entries delivered and not acknowledged.
func randomGroups(t *testing.T, r *rand.Rand, c *redis.Client, key string, entries []modelEntry) {
	ctx := context.Background()
	for g := range r.IntN(4) {
		name := fmt.Sprintf("g%d", g)
		start := "0"
		if len(entries) > 0 && r.IntN(3) > 0 {
			start = entries[r.IntN(len(entries))].id
		}
		if err := c.XGroupCreate(ctx, key, name, start).Err(); err != nil {
			t.Fatalf("XGROUP CREATE %s %s %s: %v", key, name, start, err)
		}
		if r.IntN(2) == 0 {
			msgs, err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: name, Consumer: "c", Streams: []string{key, ">"}, Count: int64(1 + r.IntN(20)), Block: -1}).Result()
			if err != nil && err != redis.Nil {
				t.Fatalf("XREADGROUP %s: %v", key, err)
			}
			for _, s := range msgs {
				for i, m := range s.Messages {
					if i%2 == 0 {
						c.XAck(ctx, key, name, m.ID)
					}
				}
			}
		}
	}
}

// randomPolicy picks each rule, or not, with a value that falls inside
// the stream; max_total_bytes is half the time exactly the size of the
// newest records up to one (where Papyra's "total + size > limit" keeps
// it).
func randomPolicy(r *rand.Rand, now time.Time, entries []modelEntry) backends.Policy {
	pol := backends.Policy{Now: now}
	n := int64(len(entries))
	if r.IntN(3) > 0 {
		age := float64(r.IntN(int(n)*100+2000)) / 1000
		pol.Retention.MaxAgeSeconds = &age
	}
	if r.IntN(2) == 0 {
		c := 1 + r.Int64N(n+5)
		pol.Retention.MaxRecords = &c
	}
	if r.IntN(3) == 0 {
		b := r.Int64N(n*400 + 100)
		if r.IntN(2) == 0 {
			b = 0
			k := newClassifier()
			for i := len(entries) - 1; i >= len(entries)-1-r.IntN(len(entries)) && i >= 0; i-- {
				if f := entries[i].fields; f[0] == "data" {
					if v := k.data(f[1].(string), true); !v.corrupt && !v.unsure {
						b += v.size
					}
				}
			}
		}
		pol.Retention.MaxTotalBytes = &b
	}
	return pol
}

// modelScan is the whole-stream model: the plan as it was before it
// streamed, every entry kept (32 bytes each) and retention applied to
// the slice. It reads the stream with one XRANGE.
func (b *Backend) modelScan(ctx context.Context, sp *streamPlan, pol backends.Policy, _ *progress) error {
	msgs, err := b.xrange(ctx, sp.key, "-", sp.last.String(), math.MaxInt32, false)
	if err != nil {
		return err
	}
	_, wantSize := pol.ByteLimit()
	k := newClassifier()
	var es []modelScanned
	var ages *backends.Ages
	if !pol.Now.IsZero() {
		ages = &backends.Ages{}
		sp.stats.Ages = ages
	}
	var cut cutter
	backlog := -1 // the first unreadable entry past quarantineMax
	for _, m := range msgs {
		id, err := parseID(m.id)
		if err != nil {
			return err
		}
		v := k.entry(m, wantSize)
		if ages != nil && !v.corrupt && !v.unsure {
			ages.Add(pol, v.ts, v.hasTS, m.size())
		}
		if v.corrupt {
			if b.cfg.quarantine && len(sp.corrupt) < b.cfg.quarantineMax {
				sp.corrupt = append(sp.corrupt, corruptEntry{id: id, size: m.size(), reason: v.reason})
			} else if b.cfg.quarantine {
				if backlog < 0 {
					backlog = len(es)
				}
			} else if len(sp.unreadableLog) < maxLogged {
				sp.unreadableLog = append(sp.unreadableLog, corruptEntry{id: id, size: m.size(), reason: v.reason})
			}
		}
		es = append(es, modelScanned{id: id, v: v})
		cut.add(id, m.size())
	}
	if err := b.modelRetain(ctx, sp, es, pol, backlog); err != nil {
		return err
	}
	sp.scanned(&cut)
	return nil
}

type modelScanned struct {
	id streamID
	v  verdict
}

func (e *modelScanned) record() bool { return !e.v.corrupt && !e.v.unsure }

// modelRetain is Papyra's apply_retention on the slice (§4.2), as the
// plan applied it before it streamed.
func (b *Backend) modelRetain(ctx context.Context, sp *streamPlan, es []modelScanned, pol backends.Policy, backlog int) error {
	ret := pol.Retention
	s := &sp.stats
	index := func(id streamID) int {
		return sort.Search(len(es), func(i int) bool { return !es[i].id.less(id) })
	}
	var records int64
	newest := math.Inf(-1)
	for i := range es {
		if es[i].record() {
			records++
			if es[i].v.hasTS && es[i].v.ts > newest && !math.IsInf(es[i].v.ts, 1) {
				newest = es[i].v.ts
			}
		}
	}
	s.RecordsBefore = records
	s.Quarantined = int64(len(sp.corrupt))

	passes := func(*modelScanned) bool { return true }
	if ret.MaxAgeSeconds != nil {
		cutoff := cutoffOf(pol)
		if b.cfg.ageByTimestamp {
			if err := pol.CheckClock(sp.key, newest, fixAgeByID); err != nil {
				return err
			}
			passes = func(e *modelScanned) bool { return e.v.hasTS && e.v.ts >= cutoff }
		} else {
			g := &guard{age: cutoffID(pol), cutoff: cutoff}
			for i := index(g.age) - 1; i >= 0; i-- {
				if g.feed(es[i].id, es[i].v.keptByAge(cutoff)) {
					break
				}
			}
			g.note(sp)
			age := g.age
			passes = func(e *modelScanned) bool { return !e.id.less(age) }
		}
	}
	var passed int64
	for i := range es {
		if es[i].record() && passes(&es[i]) {
			passed++
		}
	}
	survivors := passed
	if n, ok := pol.CountLimit(); ok && passed > n {
		survivors = n
	}
	byCount := survivors
	s.RemovedAge = records - passed
	s.RemovedCount = passed - survivors
	if limit, ok := pol.ByteLimit(); ok {
		var total, fit int64
		for i := len(es) - 1; i >= 0 && fit < survivors; i-- {
			if e := &es[i]; e.record() && passes(e) {
				if total+e.v.size > limit {
					break
				}
				total += e.v.size
				fit++
			}
		}
		s.RemovedBytes = survivors - fit
		survivors = fit
	}
	boundary := sp.last.next()
	oldest := math.Inf(1)
	var seen int64
	for i := len(es) - 1; i >= 0 && seen < survivors; i-- {
		if e := &es[i]; e.record() && passes(e) {
			seen++
			boundary = e.id
			if e.v.hasTS && e.v.ts < oldest {
				oldest = e.v.ts
			}
			if e.v.hasTS && s.Ages != nil && pol.Future(e.v.ts) {
				s.Future++
				s.NewestFuture = max(s.NewestFuture, e.v.ts)
			}
		}
	}
	if !math.IsInf(oldest, 1) {
		s.OldestKept, s.HasOldest = oldest, true
	}
	for i := range es {
		e := &es[i]
		if !e.id.less(boundary) {
			break
		}
		if !e.v.unsure || !passes(e) && e.v.hasTS {
			continue
		}
		var kept int64
		for j := i; j < len(es) && es[j].id.less(boundary); j++ {
			if es[j].record() && passes(&es[j]) {
				kept++
			}
		}
		d := min(kept, s.RemovedBytes)
		s.RemovedBytes -= d
		s.RemovedCount -= min(kept-d, s.RemovedCount)
		boundary = e.id
		break
	}
	// Records age drops above the boundary retention alone sets are
	// deleted; with a backlog of unreadable entries below it, nothing at
	// or above the first of them is trimmed, and below it every record
	// goes (age's, then the oldest count drops, then bytes').
	for i := index(boundary); i < len(es); i++ {
		if e := &es[i]; e.record() && !passes(e) {
			sp.del = append(sp.del, e.id)
		}
	}
	// Past deleteMax, the newest wait for the next run.
	var owed int64
	if over := len(sp.del) - b.cfg.deleteMax; over > 0 {
		sp.del = sp.del[:b.cfg.deleteMax]
		s.RemovedAge -= int64(over)
		owed = int64(over)
		s.Notes = append(s.Notes, fmt.Sprintf("%d records of %s that age drops above the trim wait for the next run (a run deletes at most %d one by one a stream)",
			over, sp.key, b.cfg.deleteMax))
	}
	pinned := backlog >= 0 && es[backlog].id.less(boundary)
	if pinned {
		before := s.Removed()
		var age, gone int64
		for i := range backlog {
			if e := &es[i]; e.record() && passes(e) {
				gone++
			} else if e.record() {
				age++
			}
		}
		s.RemovedAge = age + int64(len(sp.del))
		s.RemovedCount = min(gone, passed-byCount)
		s.RemovedBytes = gone - s.RemovedCount
		boundary = es[backlog].id
		var left int64
		for i := backlog; i < len(es); i++ {
			if es[i].v.corrupt {
				left++
			}
		}
		owed += before - s.Removed()
		s.Notes = append(s.Notes, backlogNote(sp.key, left, b.cfg.quarantineMax, before-s.Removed()))
	}
	if pinned || owed > 0 {
		sp.backlog = backends.Debt{Reason: backends.DebtBacklog, Detail: sp.key, Records: owed, Bytes: -1}
	}
	if sp.first.less(boundary) {
		sp.boundary = boundary
	}
	cut := index(boundary)
	for i := cut; i < len(es); i++ {
		if es[i].v.unsure {
			sp.keptUnsure++
		}
	}
	if sp.keptUnsure > 0 {
		s.Notes = append(s.Notes, fmt.Sprintf("%d entries of %s nested deeper than %d levels left in place and not counted as records: whether Papyra reads them depends on its Python version",
			sp.keptUnsure, sp.key, 900))
	}
	if !b.cfg.quarantine {
		for i := range cut {
			if es[i].v.corrupt {
				sp.unreadable++
				sp.unreadableIDs = append(sp.unreadableIDs, es[i].id)
			}
		}
		streamStats(s).RemovedCorrupt = sp.unreadable
		for i := cut; i < len(es); i++ {
			if es[i].v.corrupt {
				sp.keptUnreadable++
			}
		}
		logged := sp.unreadableLog[:0]
		for _, c := range sp.unreadableLog {
			if c.id.less(boundary) {
				logged = append(logged, c)
			}
		}
		sp.unreadableLog = logged
	}
	// The exact counts holdBack takes from a scan.
	sc := &scanCounts{above: int64(len(es) - index(sp.boundary)), from: map[streamID]int64{}}
	for _, g := range sp.groups {
		sc.from[g.floor] = int64(len(es) - index(g.floor))
	}
	sp.scan = sc
	return nil
}

// TestIDList: a list of records to delete keeps the oldest max either
// way it is filled: the first max added oldest first, the last max added
// newest first (a ring), and moving a ring into another keeps what
// adding every ID to it would.
func TestIDList(t *testing.T) {
	ids := func(ms ...uint64) []streamID {
		out := []streamID{}
		for _, m := range ms {
			out = append(out, streamID{ms: m})
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		max      int
		keepLast bool
		add      []uint64
		want     []uint64 // ascending
		dropped  int64
	}{
		{"oldest first, room", 5, false, []uint64{1, 2, 3}, []uint64{1, 2, 3}, 0},
		{"oldest first, full", 3, false, []uint64{1, 2, 3, 4, 5}, []uint64{1, 2, 3}, 2},
		{"newest first, room", 5, true, []uint64{9, 8, 7}, []uint64{7, 8, 9}, 0},
		{"newest first, wrapped", 3, true, []uint64{9, 8, 7, 6, 5, 4, 3}, []uint64{3, 4, 5}, 4},
		{"newest first, wrapped once", 3, true, []uint64{9, 8, 7, 6}, []uint64{6, 7, 8}, 1},
		{"none kept", 0, true, []uint64{2, 1}, []uint64{}, 2},
	} {
		l := idList{max: tt.max, keepLast: tt.keepLast}
		for _, m := range tt.add {
			l.add(streamID{ms: m})
		}
		if got := l.ascending(); !slices.Equal(got, ids(tt.want...)) || l.dropped != tt.dropped {
			t.Errorf("%s: %v, dropped %d; want %v, %d", tt.name, got, l.dropped, ids(tt.want...), tt.dropped)
		}
	}
	// A ring moved into a ring: as if each ID had been added to it.
	for _, n := range []int{0, 1, 2, 3, 4, 7} {
		direct := idList{max: 3, keepLast: true}
		moved := idList{max: 3, keepLast: true}
		direct.add(streamID{ms: 100})
		moved.add(streamID{ms: 100})
		pending := idList{max: 3, keepLast: true}
		for i := range n {
			direct.add(streamID{ms: uint64(50 - i)})
			pending.add(streamID{ms: uint64(50 - i)})
		}
		pending.moveTo(&moved)
		if !slices.Equal(moved.ascending(), direct.ascending()) || moved.dropped != direct.dropped {
			t.Errorf("%d moved: %v dropped %d, want %v dropped %d", n, moved.ascending(), moved.dropped, direct.ascending(), direct.dropped)
		}
	}
}
