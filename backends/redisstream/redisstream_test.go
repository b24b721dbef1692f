package redisstream_test

import (
	"context"
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
	})
}
