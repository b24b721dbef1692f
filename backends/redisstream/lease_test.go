package redisstream_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestLease(t *testing.T) {
	srv := testutil.StartRedis(t)
	testLease(t, []string{srv.Addr})
}

// slowTrim makes every trim step small, so that a run takes many steps
// and a test can act between them (from the Progress callback).
func slowTrim(t *config.Target) {
	t.TrimLimit, t.LeaseTTL = ptr[int64](100), ptr(config.Duration(time.Second))
}

// oldStream writes n records, the newest an hour old.
func oldStream(t *testing.T, c redis.UniversalClient, key string, n int) time.Time {
	now := time.Now().Truncate(time.Millisecond)
	write(t, c, key, series(now.Add(-time.Hour-time.Duration(n)*time.Millisecond), n, time.Millisecond))
	return now
}

// testLease runs a second agent while the first one works on the same
// system: it is turned away with ErrLocked, even after the lease's TTL
// has passed, since the first one renews it; and it gets in once the
// first has released it.
func testLease(t *testing.T, addrs []string) {
	ctx := context.Background()
	c := newClient(t, addrs...)
	key := "papyra:leased:events"
	now := oldStream(t, c, key, 20000)
	first := newBackend(t, target(addrs, system("leased"), slowTrim))
	second := newBackend(t, target(addrs, system("leased"), slowTrim))
	var (
		secondErr error
		ran       bool
	)
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	pol.Progress = func(s backends.Step) {
		if s.Phase != "trim" || ran {
			return
		}
		ran = true
		time.Sleep(1500 * time.Millisecond) // longer than the TTL: renewal keeps it
		_, secondErr = compact(t, second, backends.Policy{Retention: pol.Retention, Now: now})
	}
	st, err := compact(t, first, pol)
	if err != nil {
		t.Fatalf("first agent: %v", err)
	}
	if st.Removed() != 20000 {
		t.Errorf("first agent removed %d, want 20000", st.Removed())
	}
	host, _ := os.Hostname()
	holder := host + ":" + strconv.Itoa(os.Getpid()) + ":"
	if !errors.Is(secondErr, backends.ErrLocked) || !strings.Contains(secondErr.Error(), holder) {
		t.Fatalf("second agent: got %v, want ErrLocked naming the holder %s…", secondErr, holder)
	}
	if n := c.Exists(ctx, "papyra-compact:lease:{papyra:leased}").Val(); n != 0 {
		t.Errorf("lease after the run: still there, want released")
	}
	if _, err := compact(t, second, pol); err != nil {
		t.Errorf("second agent after release: %v", err)
	}
}

// TestLease_Lost: when another agent's token replaces ours (our lease
// expired during a pause), the run stops before its next command.
func TestLease_Lost(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := oldStream(t, c, "papyra:local:events", 20000)
	b := newBackend(t, target([]string{srv.Addr}, slowTrim))
	stolen := false
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	pol.Progress = func(s backends.Step) {
		if s.Phase == "trim" && s.Unit == backends.Entries && !stolen {
			stolen = true
			must(t, c.Set(context.Background(), "papyra-compact:lease:{papyra:local}", "other-host:1:x", time.Minute).Err())
			time.Sleep(1200 * time.Millisecond) // three renewal ticks: found during the pause
		}
	}
	st, err := compact(t, b, pol)
	if !errors.Is(err, redisstream.ErrLeaseLost) {
		t.Fatalf("got %v, want ErrLeaseLost", err)
	}
	if st.Removed() == 0 || st.Removed() >= 20000 {
		t.Errorf("removed %d before stopping, want some but not all", st.Removed())
	}
	if v := c.Get(context.Background(), "papyra-compact:lease:{papyra:local}").Val(); v != "other-host:1:x" {
		t.Errorf("the other agent's lease: got %q, want it left alone", v)
	}
}
