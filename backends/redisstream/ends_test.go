package redisstream_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestPlan_StreamDeletedDuringPlan: a stream deleted (and written again)
// while the plan looks at it, between its TYPE, XLEN, first and last
// entries and consumer groups, is a stream with nothing to do or a
// stream planned as it was seen, never a failed run.
func TestPlan_StreamDeletedDuringPlan(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	sys := "churn"
	key := "papyra:" + sys + ":events"
	b := newBackend(t, target([]string{srv.Addr}, system(sys), func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pipe := c.Pipeline()
			pipe.Del(ctx, key)
			for j := range 3 {
				pipe.XAdd(ctx, xadd(key, papyra(j, float64(time.Now().Add(-time.Hour).UnixMilli())/1000)))
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("churn: %v", err)
				return
			}
			if i%2 == 0 {
				must(t, c.Del(ctx, key).Err())
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	var failed int
	for range 300 {
		p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: time.Now()})
		if err != nil {
			if !errors.Is(err, backends.ErrNothingToDo) {
				failed++
				if failed < 3 {
					t.Errorf("Plan: %v", err)
				}
			}
			continue
		}
		p.Close()
	}
	if failed > 0 {
		t.Errorf("%d of 300 plans failed on a stream deleted during the plan", failed)
	}
}
