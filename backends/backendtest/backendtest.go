// Package backendtest is the test suite every backend passes. A backend's
// own test calls Run with a Harness that creates its store in Papyra's
// format and reads it back; the suite then checks the contract documented
// on backends.Backend with the same cases for every store.
package backendtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// Now is the suite's pinned clock, the fixtures' "now".
var Now = time.Unix(1795000000, 0)

// Record is one record the harness writes, as Papyra's fields.
type Record struct {
	Kind      string
	I         int
	Timestamp float64
}

// JSON renders r the way Papyra's JSON backend writes an event (kind
// first, ", " and ": " separators).
func (r Record) JSON() string {
	return fmt.Sprintf(`{"kind": %q, "system_id": "local", "actor_address": {"system": "local", "actor_id": %d}, "event_type": "ActorStarted", "payload": {"i": %d}, "timestamp": %s}`,
		r.Kind, r.I, r.I, pyFloat(r.Timestamp))
}

func pyFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	b, _ := json.Marshal(f)
	s := string(b)
	for _, c := range s {
		if c == '.' || c == 'e' {
			return s
		}
	}
	return s + ".0"
}

// Harness adapts one backend to the suite.
type Harness struct {
	// New returns a backend on a fresh, empty (not yet existing) store.
	New func(t *testing.T) backends.Backend
	// Write appends records to the store the last New made. Nil for
	// backends that persist nothing; the data cases are then not run.
	Write func(t *testing.T, recs []Record)
	// Read returns the I of every record in the store, in store order.
	Read func(t *testing.T) []int
	// LockKey returns the key the kind's LockKey computes for the target
	// of the last New, from its configuration alone. Nil for a kind that
	// needs no lock.
	LockKey func(t *testing.T) (string, error)
	// Raw returns the store as bytes a reader could tell apart: every
	// file's name, inode, mtime and content (or every entry's ID and
	// fields), so that "nothing changed" means not one byte. Nil: the
	// suite compares the records Read returns.
	Raw func(t *testing.T) string
	// Leftover lays next to the store (made by the last New, holding
	// records) what a run killed before its swap leaves behind: temp files,
	// a stale side name. Recover must remove it and change nothing else.
	// Nil for a backend that leaves nothing.
	Leftover func(t *testing.T)
}

// Run runs every case of the suite.
func Run(t *testing.T, h Harness) {
	t.Run("LockKey", func(t *testing.T) { testLockKey(t, h) })
	t.Run("RecoverIdempotent", func(t *testing.T) { testRecover(t, h) })
	if h.Write == nil {
		return
	}
	t.Run("MissingStoreIsNothingToDo", func(t *testing.T) { testMissing(t, h) })
	t.Run("DryRunChangesNothing", func(t *testing.T) { testDryRun(t, h) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, h) })
	t.Run("PlanCloseIdempotent", func(t *testing.T) { testPlanClose(t, h) })
	t.Run("FutureDated", func(t *testing.T) { testFuture(t, h) })
}

// testFuture: records stamped more than MaxClockSkew after now are kept
// and counted (Stats.Future, NewestFuture), those retention keeps only;
// one stamped exactly MaxClockSkew ahead is not future-dated (">"), and
// +Infinity is. With Explain, Stats.Ages dates every record.
func testFuture(t *testing.T, h Harness) {
	const skew = 5 * time.Minute
	now := float64(Now.Unix())
	edge := float64(Now.Add(skew).Unix()) // exactly MaxClockSkew ahead: not future
	ts := []float64{
		now - 2*86400,      // 0: 7d bucket, removed by max_age 1d
		now - 2*3600,       // 1: 1d bucket
		now - 30,           // 2: 1h bucket
		edge,               // 3: 1h bucket (not future)
		edge + 0.001,       // 4: future
		now + 86400,        // 5: future
		now - 40*86400,     // 6: 90d bucket, removed by max_age
		math.Inf(1),        // 7: future, the newest
		now + 3*3600 + 0.5, // 8: future
	}
	recs := make([]Record, len(ts))
	for i, v := range ts {
		recs[i] = Record{Kind: "event", I: i, Timestamp: v}
	}
	tests := []struct {
		name   string
		ret    config.Retention
		keep   []int
		future int64
		newest float64
	}{
		{"MaxAge", config.Retention{MaxAgeSeconds: ptr(86400.0)}, []int{1, 2, 3, 4, 5, 7, 8}, 4, math.Inf(1)},
		// max_records removes the older future-dated ones: not counted.
		{"MaxRecords", config.Retention{MaxRecords: ptr[int64](2)}, []int{7, 8}, 2, math.Inf(1)},
		{"MaxRecordsNoInfinity", config.Retention{MaxRecords: ptr[int64](4)}, []int{5, 6, 7, 8}, 3, math.Inf(1)},
		{"None", config.Retention{}, seq(0, 9, 1), 4, math.Inf(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.New(t)
			h.Write(t, recs)
			pol := backends.Policy{Now: Now, Retention: tt.ret, MaxClockSkew: skew, Explain: true}
			p, err := b.Plan(context.Background(), pol)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			defer p.Close()
			ps := p.Stats()
			a := ps.Ages
			if a == nil {
				t.Fatal("Plan with Explain: Stats.Ages is nil")
			}
			want := backends.Ages{}
			want.Buckets[0].Records, want.Buckets[1].Records, want.Buckets[2].Records, want.Buckets[4].Records = 2, 1, 1, 1
			want.Future.Records = 4
			for i := range a.Buckets {
				if a.Buckets[i].Records != want.Buckets[i].Records {
					t.Errorf("Ages.Buckets[%d] (under %s): %d records, want %d", i, ageBound(i), a.Buckets[i].Records, want.Buckets[i].Records)
				}
			}
			if a.Future.Records != 4 || a.Undated.Records != 0 {
				t.Errorf("Ages: future %d, undated %d; want 4, 0", a.Future.Records, a.Undated.Records)
			}
			if tot := a.Total(); tot.Records != int64(len(ts)) || tot.Bytes <= 0 {
				t.Errorf("Ages total: %+v, want %d records and their bytes", tot, len(ts))
			}
			st, err := b.Apply(context.Background(), p)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if got := h.Read(t); fmt.Sprint(got) != fmt.Sprint(tt.keep) {
				t.Errorf("records after Apply: got %v, want %v (future-dated records are kept)", got, tt.keep)
			}
			for _, s := range []backends.Stats{ps, st} {
				if s.Future != tt.future || s.NewestFuture != tt.newest {
					t.Errorf("Future %d, NewestFuture %v; want %d, %v", s.Future, s.NewestFuture, tt.future, tt.newest)
				}
			}
		})
	}
}

func ageBound(i int) string {
	if i < len(backends.AgeBounds) {
		return backends.AgeBounds[i].String()
	}
	return "ever"
}

func ptr[T any](v T) *T { return &v }

// testLockKey checks the key is non-empty and stable, and the same
// before the store exists as after: a run that creates the store must not
// move its lock from under a concurrent one.
func testLockKey(t *testing.T, h Harness) {
	if h.LockKey == nil {
		return
	}
	h.New(t)
	k1, err := h.LockKey(t)
	if err != nil {
		t.Fatalf("LockKey: %v", err)
	}
	if h.Write != nil {
		h.Write(t, records(2))
	}
	k2, err := h.LockKey(t)
	if err != nil {
		t.Fatalf("LockKey: %v", err)
	}
	if k1 == "" || k1 != k2 {
		t.Errorf("LockKey = %q, then %q once the store exists: want a stable non-empty key", k1, k2)
	}
}

// testRecover: Recover on a missing store creates nothing; after a
// crash-like leftover it removes the leftover and changes not a record
// (nor a byte, with Raw); run again it changes nothing more; and the
// store compacts normally afterwards.
func testRecover(t *testing.T, h Harness) {
	b := h.New(t)
	for i := 0; i < 2; i++ {
		if err := b.Recover(context.Background()); err != nil {
			t.Fatalf("Recover #%d on a missing store: %v", i+1, err)
		}
	}
	if h.Write == nil {
		return
	}
	if _, err := b.Plan(context.Background(), backends.Policy{Now: Now}); !errors.Is(err, backends.ErrNothingToDo) {
		t.Fatalf("Plan after Recover on a missing store: got %v, want ErrNothingToDo (Recover must not create the store)", err)
	}
	b = h.New(t)
	h.Write(t, records(10))
	before := h.Read(t)
	var raw string
	if h.Raw != nil {
		raw = h.Raw(t)
	}
	if h.Leftover != nil {
		h.Leftover(t)
		if h.Raw != nil && h.Raw(t) == raw {
			t.Fatal("Leftover changed nothing Raw shows: the test would not see Recover ignore it")
		}
	}
	for i := 0; i < 2; i++ {
		if err := b.Recover(context.Background()); err != nil {
			t.Fatalf("Recover #%d after a kill: %v", i+1, err)
		}
		if got := h.Read(t); fmt.Sprint(got) != fmt.Sprint(before) {
			t.Fatalf("records after Recover #%d: got %v, want %v", i+1, got, before)
		}
		if h.Raw != nil {
			if got := h.Raw(t); got != raw {
				t.Fatalf("store after Recover #%d:\n%s\nwant (the leftover gone, nothing else changed):\n%s", i+1, got, raw)
			}
		}
	}
	p, err := b.Plan(context.Background(), backends.Policy{Now: Now, Retention: config.Retention{MaxRecords: ptr[int64](3)}})
	if err != nil {
		t.Fatalf("Plan after Recover: %v", err)
	}
	defer p.Close()
	if _, err := b.Apply(context.Background(), p); err != nil {
		t.Fatalf("Apply after Recover: %v", err)
	}
	if got, want := h.Read(t), before[len(before)-3:]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records after a compaction that follows Recover: got %v, want %v", got, want)
	}
}

func testMissing(t *testing.T, h Harness) {
	b := h.New(t)
	_, err := b.Plan(context.Background(), backends.Policy{Now: Now})
	if !errors.Is(err, backends.ErrNothingToDo) {
		t.Fatalf("Plan on a missing store: got %v, want ErrNothingToDo", err)
	}
}

// records returns n records, the first half two days old, the rest
// fresh, interleaved (age retention is per record, not a cut).
func records(n int) []Record {
	recs := make([]Record, n)
	for i := range recs {
		ts := float64(Now.Unix()) - 60
		if i%2 == 0 {
			ts = float64(Now.Unix()) - 2*86400
		}
		recs[i] = Record{Kind: "event", I: i, Timestamp: ts + float64(i)/1000}
	}
	return recs
}

// testDryRun: a plan that is not applied changes nothing: the same
// records in the same order, and (with Raw) the same bytes, names, inodes
// and mtimes.
func testDryRun(t *testing.T, h Harness) {
	b := h.New(t)
	h.Write(t, records(50))
	before := h.Read(t)
	var raw string
	if h.Raw != nil {
		raw = h.Raw(t)
	}
	p, err := b.Plan(context.Background(), backends.Policy{Now: Now, Retention: config.Retention{MaxRecords: ptr[int64](5)}})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if got, want := p.Stats().RecordsAfter, int64(5); got != want {
		t.Errorf("planned RecordsAfter: got %d, want %d", got, want)
	}
	if got, want := p.Stats().RecordsBefore, int64(50); got != want {
		t.Errorf("planned RecordsBefore: got %d, want %d", got, want)
	}
	p.Close()
	if got := h.Read(t); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("after a plan without apply: got records %v, want %v", got, before)
	}
	if h.Raw != nil {
		if got := h.Raw(t); got != raw {
			t.Errorf("after a plan without apply the store changed:\n%s\nwant:\n%s", got, raw)
		}
	}
}

func testRetention(t *testing.T, h Harness) {
	tests := []struct {
		name string
		ret  config.Retention
		want []int
	}{
		{"None", config.Retention{}, seq(0, 20, 1)},
		{"MaxRecords", config.Retention{MaxRecords: ptr[int64](5)}, seq(15, 20, 1)},
		{"MaxRecordsZeroKeepsAll", config.Retention{MaxRecords: ptr[int64](0)}, seq(0, 20, 1)},
		{"MaxAge", config.Retention{MaxAgeSeconds: ptr(86400.0)}, seq(1, 20, 2)},
		{"AgeThenCount", config.Retention{MaxAgeSeconds: ptr(86400.0), MaxRecords: ptr[int64](3)}, []int{15, 17, 19}},
		{"MaxTotalBytesZero", config.Retention{MaxTotalBytes: ptr[int64](0)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.New(t)
			h.Write(t, records(20))
			p, err := b.Plan(context.Background(), backends.Policy{Now: Now, Retention: tt.ret})
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			defer p.Close()
			st, err := b.Apply(context.Background(), p)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			got := h.Read(t)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("records after Apply: got %v, want %v", got, tt.want)
			}
			if st.RecordsAfter != int64(len(tt.want)) || st.RecordsBefore != 20 {
				t.Errorf("stats: got %d -> %d, want 20 -> %d", st.RecordsBefore, st.RecordsAfter, len(tt.want))
			}
		})
	}
}

func testPlanClose(t *testing.T, h Harness) {
	b := h.New(t)
	h.Write(t, records(3))
	p, err := b.Plan(context.Background(), backends.Policy{Now: Now})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}

func seq(from, to, step int) []int {
	var out []int
	for i := from; i < to; i += step {
		out = append(out, i)
	}
	return out
}

// Numbers returns the I of every record JSON renders, in order; a Harness's
// Read calls it with the store's lines.
// PythonJSON makes a line Papyra wrote with a timestamp of Infinity
// readable by encoding/json (the timestamp becomes 0).
func PythonJSON(l string) string {
	return strings.Replace(l, `"timestamp": Infinity`, `"timestamp": 0`, 1)
}

func Numbers(t *testing.T, lines []string) []int {
	t.Helper()
	var out []int
	for _, l := range lines {
		var r struct{ Payload struct{ I int } }
		if err := json.Unmarshal([]byte(PythonJSON(l)), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, r.Payload.I)
	}
	return out
}

// CheckLateWriterNotes checks what a file backend's run reports about the
// late-writer check (livefile.AwaitWriters): with CAP_LEASE, nothing;
// without it, exactly one note in notes naming the file (prefix
// "could not check for late writers of "+of), the capability and the grace
// period relied on, and exactly one warning in logged (a text log at
// level WARN and above).
func CheckLateWriterNotes(t *testing.T, notes []string, logged string, capLease bool, of, grace string) {
	t.Helper()
	var late []string
	for _, n := range notes {
		if strings.Contains(n, "late writers") {
			late = append(late, n)
		}
	}
	warns := strings.Count(logged, "level=WARN")
	if capLease {
		if len(late) != 0 || warns != 0 {
			t.Errorf("with CAP_LEASE: notes %q, log:\n%s", late, logged)
		}
		return
	}
	if len(late) != 1 {
		t.Fatalf("notes %q, want one about the unchecked late writers", notes)
	}
	for _, want := range []string{"could not check for late writers of " + of, "CAP_LEASE", "relied on grace_period " + grace} {
		if !strings.Contains(late[0], want) {
			t.Errorf("note %q does not say %q", late[0], want)
		}
	}
	if warns != 1 || !strings.Contains(logged, "could not check for late writers") {
		t.Errorf("want one warning about the unchecked late writers, got:\n%s", logged)
	}
}
