package redisstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestQuarantineBacklog: a stream with more unreadable entries than one
// run quarantines (here 4, by default 100,000: the plan holds an item
// for each) is worked off over several runs. No run trims an unreadable
// entry it did not quarantine (it would be lost), every record
// retention keeps stays, each run owes what it left as
// quarantine_backlog debt, and the last run leaves exactly what
// retention keeps, with every unreadable entry quarantined once.
func TestQuarantineBacklog(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { c.Close() })
	const key = "papyra:backlog:events"
	now := time.Now()
	old := now.Add(-48 * time.Hour).UnixMilli()
	// 30 old entries, every third unreadable, then 5 fresh records.
	corrupt := map[string]bool{}
	for i := range 30 {
		id := fmt.Sprintf("%d-0", old+int64(i))
		data := fmt.Sprintf(`{"kind": "event", "payload": {"i": %d}, "timestamp": %d}`, i, old/1000)
		if i%3 == 1 {
			data = fmt.Sprintf("garbage %d", i)
			corrupt[id] = true
		}
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []any{"data", data}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		data := fmt.Sprintf(`{"kind": "event", "payload": {"i": %d}, "timestamp": %d}`, 100+i, now.Unix())
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", now.UnixMilli()-10+int64(i)), Values: []any{"data", data}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	be, err := New(config.Target{Name: "t", Kind: config.KindRedis, Addrs: []string{srv.Addr}, SystemID: "backlog", DutyCycle: ptrTo(1.0), Approximate: ptrTo(false)}, backends.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	b := be.(*Backend)
	b.cfg.quarantineMax = 4
	qkey := b.quarantineKey("backlog", key)
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptrTo(3600.0)}, Now: now}

	var quarantined int64
	for run := 1; ; run++ {
		if run > 5 {
			t.Fatalf("run %d: 10 unreadable entries, 4 a run: should be done in 3", run)
		}
		if err := b.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		p, err := b.Plan(ctx, pol)
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Apply(ctx, p)
		p.Close()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		quarantined += st.Quarantined
		// Every unreadable entry is in the source or the quarantine.
		left, err := c.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var inSource int
		for _, m := range left {
			if corrupt[m.ID] {
				inSource++
			}
		}
		q := c.XLen(ctx, qkey).Val()
		if inSource+int(q) != len(corrupt) || q != quarantined {
			t.Fatalf("run %d: %d unreadable entries in the source and %d quarantined (%d reported), want %d in all", run, inSource, q, quarantined, len(corrupt))
		}
		var owed int64
		for _, d := range st.Debt {
			if d.Reason == backends.DebtBacklog {
				owed += d.Records
			}
		}
		if inSource == 0 {
			if len(left) != 5 || owed != 0 {
				t.Fatalf("run %d: %d entries left, backlog debt %d; want the 5 fresh records, none", run, len(left), owed)
			}
			if run != 3 {
				t.Errorf("done in %d runs, want 3", run)
			}
			return
		}
		// Records from the first unreadable entry left on stay, and are
		// owed: the old ones among the 35 entries still there.
		var oldLeft int64
		for _, m := range left {
			if !corrupt[m.ID] && m.ID < fmt.Sprint(old+30) {
				oldLeft++
			}
		}
		if owed != oldLeft || st.Quarantined != 4 {
			t.Errorf("run %d: quarantined %d, backlog debt %d records; want 4, the %d old records left", run, st.Quarantined, owed, oldLeft)
		}
	}
}
