package redisstream_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestTrimCuts: a trim step frees at most 16 MiB and one entry, whatever
// the mix of sizes, without reading anything: the plan read the entries
// it removes and cut them into runs (a MINID trim up to each cut in
// turn). The test knows every entry it wrote, so it checks, from the
// thresholds of the trim steps in SLOWLOG, how many bytes each range
// between two successive thresholds holds. 80 MB of 4 MB entries between
// small ones would otherwise go in one step (freeing costs Redis about
// 0.1 ms per MB, reading several ms: what counts at gigabytes). No step
// may size itself by reading inside the script either (a budget in its
// arguments): that reads the oldest entry at several times its cost. So
// max_records beyond what Plan walks (MaxRecords) is trimmed up to the
// cuts too: XTRIM MAXLEN freed unread entries, sized by such a read.
func TestTrimCuts(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const trimBytes, entry = 16 << 20, 4 << 20
	for _, mode := range []struct {
		name string
		mod  func(*config.Target)
	}{
		{"Scan", func(*config.Target) {}},
		{"ByID", func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }},
		{"MaxRecords", func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }},
	} {
		if mode.name == "MaxRecords" && testing.Short() {
			continue // 100,000 fresh entries
		}
		t.Run(mode.name, func(t *testing.T) {
			sys := "cuts-" + strings.ToLower(mode.name)
			key := "papyra:" + sys + ":events"
			now := time.Now().Truncate(time.Millisecond)
			at := now.Add(-48 * time.Hour)
			type written struct {
				id   string
				size int64
			}
			var all []written
			addSmall := func(n int) {
				recs := series(at, n, time.Millisecond)
				write(t, c, key, recs)
				for _, r := range recs {
					id := fmt.Sprintf("%d-%d", r.ms, r.seq)
					all = append(all, written{id, int64(len(id) + len("data") + len(papyra(r.i, r.ts)))})
				}
				at = at.Add(time.Duration(n) * time.Millisecond)
			}
			addSmall(100)
			for j := range 20 {
				id := fmt.Sprintf("%d-0", at.UnixMilli())
				data := bigRecord(j, float64(at.UnixMilli())/1000, entry)
				must(t, c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []any{"data", data}}).Err())
				all = append(all, written{id, int64(len(id) + len("data") + len(data))})
				at = at.Add(time.Millisecond)
			}
			addSmall(100)
			// Fresh entries: 10, or with MaxRecords more than Plan walks
			// back over (walkCap), one ms apart, so that max_records
			// removes exactly the old ones.
			fresh, ret := 10, config.Retention{MaxAgeSeconds: ptr(3600.0)}
			if mode.name == "MaxRecords" {
				fresh = 100_001
				ret = config.Retention{MaxRecords: ptr(int64(fresh))}
			}
			write(t, c, key, series(now.Add(-time.Duration(fresh+10)*time.Millisecond), fresh, time.Millisecond))

			b := newBackend(t, target([]string{srv.Addr}, system(sys), exact, mode.mod))
			slowlogOn(t, c, 100_000)
			st, err := compact(t, b, backends.Policy{Retention: ret, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			if n := xlen(t, c, key); n != int64(fresh) || st.Removed() != 220 {
				t.Fatalf("%d left, removed %d; want %d, 220", n, st.Removed(), fresh)
			}
			// trimScript's arguments: sha, 1, key, mode, threshold, approx, limit, budget.
			seen := map[string]bool{}
			var thresholds []streamIDText
			for _, l := range agentCommands(t, c) {
				a := l.Args
				if len(a) >= 9 && strings.EqualFold(a[0], "EVALSHA") && a[2] == "1" && a[3] == key {
					if a[4] != "minid" {
						t.Errorf("%s: a trim step that is not up to a threshold read by the plan", describe(l))
					}
					if a[8] != "0" {
						t.Errorf("%s: a trim step that reads the oldest entry inside the script to size itself", describe(l))
					}
				}
				if len(a) >= 9 && strings.EqualFold(a[0], "EVALSHA") && a[4] == "minid" && !seen[a[5]] {
					seen[a[5]] = true
					thresholds = append(thresholds, parseIDText(t, a[5]))
				}
			}
			var largest int64
			for _, w := range all {
				largest = max(largest, w.size)
			}
			sort.Slice(thresholds, func(i, j int) bool { return thresholds[i].less(thresholds[j]) })
			var from streamIDText
			for _, th := range thresholds {
				var bytes int64
				for _, w := range all {
					if id := parseIDText(t, w.id); !id.less(from) && id.less(th) {
						bytes += w.size
					}
				}
				if bytes > trimBytes+largest {
					t.Errorf("a trim step up to %v may free %d bytes, want at most 16 MiB and one entry (%d)", th, bytes, trimBytes+largest)
				}
				from = th
			}
			t.Logf("%d trim thresholds", len(thresholds))
		})
	}
}

// streamIDText is a stream ID parsed for comparing.
type streamIDText struct{ ms, seq uint64 }

func (a streamIDText) less(b streamIDText) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func parseIDText(t testing.TB, s string) streamIDText {
	t.Helper()
	var id streamIDText
	if _, err := fmt.Sscanf(s, "%d-%d", &id.ms, &id.seq); err != nil {
		t.Fatalf("stream ID %q: %v", s, err)
	}
	return id
}
