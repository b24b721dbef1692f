package redisstream_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
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
		pol.Progress = func(phase string, done, total int64) {
			for _, n := range cl.Nodes {
				if phase == "trim entries" && n.Addr == m.Options().Addr {
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
	b := newBackend(t, target([]string{sentinel.Addr}, exact, func(t *config.Target) { t.MasterName = "papyra" }))
	if key, _ := b.LockKey(); key != "redis:sentinel:papyra@"+sentinel.Addr+"/0/papyra:local" {
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
