package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func TestDiscovery(t *testing.T) {
	srv := testutil.StartRedis(t)
	testDiscovery(t, []string{srv.Addr}, "papyra")
	// A prefix with SCAN pattern characters matches only itself.
	testDiscovery(t, []string{srv.Addr}, "app[1]*")
}

// testDiscovery checks system_id "*": every system under the prefix is
// compacted, whichever of its three streams it has, and nothing else is
// touched: quarantine streams, other prefixes, keys that are not streams.
func testDiscovery(t *testing.T, addrs []string, prefix string) {
	ctx := context.Background()
	c := newClient(t, addrs...)
	now := time.Now()
	recs := series(now.Add(-time.Minute), 5, time.Second)
	var papyraKeys []string
	for i := range 12 {
		sys := fmt.Sprintf("sys-%d:%s", i, prefix) // a system_id may hold ':'
		for k, kind := range []string{"events", "audits", "dead_letters"} {
			if (i+k)%3 == 0 {
				continue // not every system has every stream
			}
			key := prefix + ":" + sys + ":" + kind
			write(t, c, key, recs)
			papyraKeys = append(papyraKeys, key)
		}
	}
	untouched := []string{
		prefix + ":sys-0:" + prefix + ":quarantine:" + strings.ReplaceAll(prefix+":sys-0:"+prefix+":events", ":", "_"),
		"other" + prefix + ":sys-1:events",
		prefix + "x:sys-1:events",
	}
	for _, key := range untouched {
		write(t, c, key, recs)
	}
	must(t, c.Set(ctx, prefix+":notastream:events", "x", 0).Err())

	tgt := target(addrs, system("*"), exact, func(t *config.Target) { t.Prefix = prefix })
	b := newBackend(t, tgt)
	if key, _ := redisstream.LockKey(tgt); !strings.HasSuffix(key, "/"+prefix+":*") {
		t.Errorf("LockKey: got %q, want it to end in /%s:*", key, prefix)
	}
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](2)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range papyraKeys {
		if got := readI(t, c, key); !sameInts(got, []int{3, 4}) {
			t.Errorf("%s: got %v, want [3 4]", key, got)
		}
	}
	for _, key := range untouched {
		if n := xlen(t, c, key); n != 5 {
			t.Errorf("%s: got %d entries, want 5 (not a Papyra stream of this prefix)", key, n)
		}
	}
	if want := int64(3 * len(papyraKeys)); st.Removed() != want {
		t.Errorf("removed: got %d, want %d", st.Removed(), want)
	}
}
