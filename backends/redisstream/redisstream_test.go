package redisstream_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_Suite runs the shared suite. Its records interleave old and
// fresh timestamps, so only Papyra's per-record age rule (age_by:
// timestamp) can keep exactly the fresh ones; the suite's streams are
// small, so exact trimming (approximate: false) shows every record.
func TestBackend_Suite(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	var (
		key string
		tgt config.Target
	)
	n := 0
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			n++
			sys := "suite" + itoa(n)
			key = "papyra:" + sys + ":events"
			tgt = target([]string{srv.Addr}, system(sys), exact, func(t *config.Target) { t.AgeBy = "timestamp" })
			return newBackend(t, tgt)
		},
		Write: func(t *testing.T, recs []backendtest.Record) {
			for _, r := range recs {
				if err := c.XAdd(context.Background(), xadd(key, r.JSON())).Err(); err != nil {
					t.Fatal(err)
				}
			}
		},
		Read:    func(t *testing.T) []int { return readI(t, c, key) },
		LockKey: func(*testing.T) (string, error) { return redisstream.LockKey(tgt) },
		// Every key of the system with its entries' IDs and fields, so
		// that "nothing changed" covers IDs and the other streams too.
		Raw: func(t *testing.T) string {
			ctx := context.Background()
			keys, err := c.Keys(ctx, strings.TrimSuffix(key, ":events")+":*").Result()
			if err != nil {
				t.Fatal(err)
			}
			sort.Strings(keys)
			var b strings.Builder
			for _, k := range keys {
				msgs, err := c.XRange(ctx, k, "-", "+").Result()
				if err != nil {
					fmt.Fprintf(&b, "%s: %s\n", k, c.Type(ctx, k).Val())
					continue
				}
				for _, m := range msgs {
					fmt.Fprintf(&b, "%s %s %v\n", k, m.ID, m.Values)
				}
			}
			return b.String()
		},
	})
}
