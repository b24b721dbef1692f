package redisstream_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestCluster runs the retention, consumer-group, quarantine, discovery
// and lease tests against a real Redis Cluster of three masters: Papyra's
// keys carry no hash tags, so one system's streams, their quarantine
// streams and the lease land on different nodes.
func TestCluster(t *testing.T) {
	cl := testutil.StartRedisCluster(t, 3)
	addrs := cl.Addrs
	t.Run("Retention", func(t *testing.T) { testRetentionByID(t, addrs) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, addrs) })
	t.Run("Quarantine", func(t *testing.T) { testQuarantine(t, addrs) })
	t.Run("Discovery", func(t *testing.T) {
		testDiscovery(t, addrs, "disco") // a prefix no other subtest uses
		// The systems were spread over every master, and SCAN found
		// them on each.
		cc, ok := newClient(t, addrs...).(*redis.ClusterClient)
		if !ok {
			t.Fatal("two or more addrs should make a cluster client")
		}
		var empty atomic.Int32
		must(t, cc.ForEachMaster(context.Background(), func(ctx context.Context, m *redis.Client) error {
			if keys, _, err := m.Scan(ctx, 0, "disco:sys-*", 1000).Result(); err != nil {
				return err
			} else if len(keys) == 0 {
				empty.Add(1)
			}
			return nil
		}))
		if n := empty.Load(); n != 0 {
			t.Errorf("%d masters hold no Papyra stream; the test wants them spread", n)
		}
	})
	t.Run("Lease", func(t *testing.T) { testLease(t, addrs) })
	// Last: it takes a master down. The run fails naming the stream, and
	// what it removed was below the boundary.
	t.Run("MasterKilledMidRun", func(t *testing.T) {
		ctx := context.Background()
		c := newClient(t, addrs...)
		key := "papyra:dies:events"
		now := oldStream(t, c, key, 20000)
		m, err := c.(*redis.ClusterClient).MasterForKey(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		b := newBackend(t, target(addrs, system("dies"), slowTrim, func(t *config.Target) { t.Timeout = ptr(config.Duration(time.Second)) }))
		pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
		pol.Progress = func(s backends.Step) {
			for _, n := range cl.Nodes {
				if s.Phase == "trim" && s.Unit == backends.Entries && n.Addr == m.Options().Addr {
					n.Kill()
				}
			}
		}
		_, err = compact(t, b, pol)
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "cluster:") {
			t.Errorf("got %v, want a failure naming the cluster and %s", err, key)
		}
	})
}

// TestSentinel compacts through Sentinel: the client asks the Sentinel
// for the master and works there.
func TestSentinel(t *testing.T) {
	master := testutil.StartRedis(t)
	sentinel := testutil.StartRedisSentinel(t, "papyra", master.Addr)
	c := newClient(t, master.Addr)
	now := oldStream(t, c, "papyra:local:events", 1000)
	write(t, c, "papyra:local:events", series(now.Add(-time.Second), 10, time.Millisecond))
	tgt := target([]string{sentinel.Addr}, exact, func(t *config.Target) { t.MasterName = "papyra" })
	b := newBackend(t, tgt)
	if key, _ := redisstream.LockKey(tgt); key != "redis:sentinel:papyra@"+sentinel.Addr+"/0/papyra:local" {
		t.Errorf("LockKey: got %q, want it to name the Sentinel set", key)
	}
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if got := readI(t, c, "papyra:local:events"); !sameInts(got, seq(0, 10)) || st.Removed() != 1000 {
		t.Errorf("records: got %v (removed %d), want the 10 fresh ones (1000 removed)", got, st.Removed())
	}
}

// TestSentinelFailoverMidRun kills the master while a run trims through
// Sentinel, and Sentinel promotes the replica. The run ends (failed or
// done, never hung); the promoted replica holds every fresh record and a
// gapless suffix of the old ones (a trim removes from the front only, and
// what did not replicate before the kill is simply still there); and the
// next run, which asks the Sentinel again, finishes on the new master.
func TestSentinelFailoverMidRun(t *testing.T) {
	ctx := context.Background()
	master := testutil.StartRedis(t)
	host, port, err := net.SplitHostPort(master.Addr)
	if err != nil {
		t.Fatal(err)
	}
	replica := testutil.StartRedis(t, "--replicaof", host, port)
	mc, rc := newClient(t, master.Addr), newClient(t, replica.Addr)
	waitUntil(t, 10*time.Second, "the replica to sync", func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	sentinel := testutil.StartRedisSentinel(t, "papyra", master.Addr)
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel.Addr})
	t.Cleanup(func() { sc.Close() })
	waitUntil(t, 20*time.Second, "the Sentinel to find the replica", func() bool {
		reps, err := sc.Replicas(ctx, "papyra").Result()
		return err == nil && len(reps) > 0
	})

	key := "papyra:local:events"
	const old = 20000
	now := oldStream(t, mc, key, old)
	write(t, mc, key, series(now.Add(-time.Second), 10, time.Millisecond))
	if n, err := mc.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n < 1 {
		t.Fatalf("WAIT for the replica: %d, %v", n, err)
	}
	tgt := target([]string{sentinel.Addr}, exact, slowTrim, func(t *config.Target) {
		t.MasterName = "papyra"
		t.Timeout = ptr(config.Duration(time.Second))
	})
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	var killed atomic.Bool
	pol.Progress = func(s backends.Step) {
		if s.Phase == "trim" && s.Unit == backends.Entries && s.Done > 0 && killed.CompareAndSwap(false, true) {
			master.Kill()
		}
	}
	start := time.Now()
	_, err = compact(t, newBackend(t, tgt), pol)
	t.Logf("run with the master killed mid-trim: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
	if err != nil && (!strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "sentinel:papyra")) {
		t.Errorf("got %v, want a failure naming the Sentinel set and %s", err, key)
	}
	if !killed.Load() {
		t.Fatal("the run never reached the trim; the test proves nothing")
	}

	waitUntil(t, 60*time.Second, "the Sentinel to promote the replica", func() bool {
		a, err := sc.GetMasterAddrByName(ctx, "papyra").Result()
		return err == nil && len(a) == 2 && net.JoinHostPort(a[0], a[1]) == replica.Addr
	})
	got := readI(t, rc, key)
	if len(got) < 10 || !sameInts(got[len(got)-10:], seq(0, 10)) || !sameInts(got[:len(got)-10], seq(old-(len(got)-10), old)) {
		t.Fatalf("after the failover the stream holds %d entries, want a gapless suffix of the old ones and the 10 fresh ones", len(got))
	}
	t.Logf("the failover left %d of %d old entries", len(got)-10, old)

	// The lease the dead master held was replicated; it expires (TTL 1s).
	var st backends.Stats
	waitUntil(t, 10*time.Second, "a run on the new master", func() bool {
		st, err = compact(t, newBackend(t, tgt), backends.Policy{Retention: pol.Retention, Now: now})
		return !errors.Is(err, backends.ErrLocked)
	})
	if err != nil {
		t.Fatalf("run on the new master: %v", err)
	}
	if got2 := readI(t, rc, key); !sameInts(got2, seq(0, 10)) || st.Removed() != int64(len(got)-10) {
		t.Errorf("after the second run: %d entries (removed %d), want the 10 fresh ones (%d removed)", len(got2), st.Removed(), len(got)-10)
	}
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}
