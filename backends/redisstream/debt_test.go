package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// debtOf returns st's debt for reason, by detail.
func debtOf(st backends.Stats, reason backends.DebtReason) map[string]backends.Debt {
	out := map[string]backends.Debt{}
	for _, d := range st.Debt {
		if d.Reason == reason {
			out[d.Detail] = d
		}
	}
	return out
}

// TestDebt_HeldByGroup: what each consumer group holds is debt, per
// group, with the oldest entry it holds, in the plan and after the run,
// exact or approximate; a group that acknowledges everything owes
// nothing, and the next run clears its debt.
func TestDebt_HeldByGroup(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	c := newClient(t, srv.Addr)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	removeAll := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: start.Add(time.Hour)}
	id := func(i int) string { return fmt.Sprintf("%d-0", start.Add(time.Duration(i)*time.Second).UnixMilli()) }
	ts := func(i int) float64 { return float64(start.Add(time.Duration(i)*time.Second).UnixMilli()-2) / 1000 }
	for _, approx := range []bool{false, true} {
		t.Run(fmt.Sprintf("approximate=%v", approx), func(t *testing.T) {
			sys := fmt.Sprintf("debt-held-%v", approx)
			key := "papyra:" + sys + ":events"
			write(t, c, key, series(start, 1000, time.Second))
			// readers: 0..99 acknowledged, 100..299 pending; late: from 500.
			must(t, c.XGroupCreate(ctx, key, "readers", "0").Err())
			must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "readers", Consumer: "c1", Streams: []string{key, ">"}, Count: 300}).Err())
			var acks []string
			for i := range 100 {
				acks = append(acks, id(i))
			}
			must(t, c.XAck(ctx, key, "readers", acks...).Err())
			must(t, c.XGroupCreate(ctx, key, "late", id(499)).Err())

			b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) { t.Approximate = ptr(approx) }))
			p, err := b.Plan(ctx, removeAll)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]struct {
				n      int64
				oldest int
			}{"group readers of " + key: {900, 100}, "group late of " + key: {500, 500}}
			check := func(what string, st backends.Stats) {
				t.Helper()
				got := debtOf(st, backends.DebtHeldByGroup)
				if len(got) != len(want) {
					t.Errorf("%s: held_by_group debt: got %+v, want %v", what, got, want)
				}
				for detail, w := range want {
					d, ok := got[detail]
					if !ok || d.Records != w.n || d.Bytes != -1 || !d.HasOldest || math.Abs(d.Oldest-ts(w.oldest)) > 1e-6 {
						t.Errorf("%s: %s: got %+v, want %d entries since record %d (%v)", what, detail, d, w.n, w.oldest, ts(w.oldest))
					}
				}
			}
			check("plan", p.Stats())
			st, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			check("run", st)
			// Below the lowest floor (readers', at 100) nothing is held:
			// what an approximate trim leaves there (part of a node) is
			// its own debt, apart from what the groups hold.
			left := xlen(t, c, key) - 900
			got := debtOf(st, backends.DebtApproximate)
			if approx && left > 0 {
				if d := got[key]; len(got) != 1 || d.Records != left {
					t.Errorf("approximate_trim debt: got %+v, want the %d entries left below the lowest floor", got, left)
				}
			} else if len(got) != 0 || left != 0 {
				t.Errorf("approximate_trim debt %+v, %d left below the floor: want neither", got, left)
			}
			// Both groups read and acknowledge everything: the next run
			// removes it all and owes nothing.
			for _, g := range []string{"readers", "late"} {
				must(t, c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: g, Consumer: "c1", Streams: []string{key, ">"}, Count: 2000}).Err())
				pend, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g, Start: "-", End: "+", Count: 2000}).Result()
				must(t, err)
				var ids []string
				for _, e := range pend {
					ids = append(ids, e.ID)
				}
				must(t, c.XAck(ctx, key, g, ids...).Err())
			}
			st, err = compact(t, b, removeAll)
			if err != nil {
				t.Fatal(err)
			}
			if got := debtOf(st, backends.DebtHeldByGroup); len(got) != 0 {
				t.Errorf("after the groups acknowledged everything: held_by_group debt %+v, want none", got)
			}
		})
	}
}

// TestDebt_Approximate: an approximate trim that leaves part of a node
// below the boundary (or above max_records) owes exactly what it left;
// an exact one owes nothing.
func TestDebt_Approximate(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	start := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	// 1,000 records a second apart: max_age keeps the newest 450 (the
	// boundary falls inside a 100-entry node).
	age := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(449.5)}, Now: start.Add(999 * time.Second)}
	count := backends.Policy{Retention: config.Retention{MaxRecords: ptr(int64(150))}, Now: start.Add(999 * time.Second)}
	for _, tt := range []struct {
		name   string
		pol    backends.Policy
		approx bool
		kept   int64
	}{
		{"AgeApproximate", age, true, 450},
		{"AgeExact", age, false, 450},
		{"CountApproximate", count, true, 150},
		{"CountExact", count, false, 150},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sys := "debt-" + tt.name
			key := "papyra:" + sys + ":events"
			write(t, c, key, series(start, 1000, time.Second))
			b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) { t.Approximate = ptr(tt.approx) }))
			st, err := compact(t, b, tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			left := xlen(t, c, key) - tt.kept
			got := debtOf(st, backends.DebtApproximate)
			switch {
			case !tt.approx && (left != 0 || len(got) != 0):
				t.Errorf("exact trim: %d left over, debt %+v; want neither", left, got)
			case tt.approx && left <= 0:
				t.Fatalf("the approximate trim left nothing over (%d): the test does not test", left)
			case tt.approx:
				if d := got[key]; len(got) != 1 || d.Records != left || d.Estimated || d.Bytes != -1 {
					t.Errorf("approximate_trim debt: got %+v, want %d entries of %s", got, left, key)
				}
			}
		})
	}
}

// TestDebt_Incomplete: a run that fails part way owes, as incomplete,
// what its plan removes that it did not; one that finishes every stream
// and fails on a key of the wrong type still accounts for its debt (an
// entry of 0 records), so that the agent does not take the whole plan
// as owed.
func TestDebt_Incomplete(t *testing.T) {
	t.Run("Cancelled", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		c := newClient(t, srv.Addr)
		const key = "papyra:local:events"
		now := oldStream(t, c, key, 20000)
		b := newBackend(t, target([]string{srv.Addr}, slowTrim, exact))
		ctx, cancel := context.WithCancel(context.Background())
		pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
		pol.Progress = func(s backends.Step) {
			if s.Phase == "trim" && s.Unit == backends.Entries && s.Done >= 5000 {
				cancel()
			}
		}
		p, err := b.Plan(ctx, pol)
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Apply(ctx, p)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		n := xlen(t, c, key)
		if d := debtOf(st, backends.DebtIncomplete)[key]; n == 0 || d.Records != n {
			t.Errorf("incomplete debt: got %+v with %d entries left, want exactly them", st.Debt, n)
		}
	})
	t.Run("WrongTypeKey", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		c := newClient(t, srv.Addr)
		now := oldStream(t, c, "papyra:local:events", 100)
		must(t, c.Set(context.Background(), "papyra:local:audits", "not a stream", 0).Err())
		b := newBackend(t, target([]string{srv.Addr}, exact))
		st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now})
		if err == nil {
			t.Fatal("want the wrong-type key reported")
		}
		if r, _ := st.DebtTotal(); len(st.Debt) == 0 || r != 0 {
			t.Errorf("debt: got %+v, want an account of nothing owed", st.Debt)
		}
	})
}
