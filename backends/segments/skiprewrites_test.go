package segments_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
)

// TestBackend_SkipRewrites: a plan without its rewrites
// (backends.RewriteSkipper, what min_reclaim keeps of a rotating store)
// drops every segment retention empties, exactly as the whole plan
// would, and leaves every segment the plan would rewrite as it is (same
// inode, same bytes): boundary or active, with expired, corrupt, blank or
// future-dated lines. Its stats say so before Apply and Apply reports the
// same. A plan that rewrites nothing has nothing to skip.
func TestBackend_SkipRewrites(t *testing.T) {
	future := float64(backendtest.Now.Unix()) + 86400
	tests := []struct {
		name string
		l    layout
		ret  config.Retention
		// rewrites reports whether the plan rewrites anything; dropped
		// lists the segments it drops; the rest are rewritten or
		// untouched, and must stay byte for byte when rewrites are
		// skipped.
		rewrites   bool
		dropped    []int
		quarantine int64 // corrupt lines of dropped segments
		future     int64
	}{
		{"RotatedBoundary", layout{3: rec(1, old) + rec(2, old), 2: rec(3, old) + rec(4, fresh), 1: rec(5, fresh), 0: rec(6, fresh)},
			age, true, []int{3}, 0, 0},
		{"ActiveBoundary", layout{2: rec(1, old), 1: rec(2, old) + rec(3, old), 0: rec(4, old) + rec(5, fresh)},
			age, true, []int{2, 1}, 0, 0},
		{"ByCount", layout{3: rec(1, fresh) + rec(2, fresh), 2: rec(3, fresh) + rec(4, fresh), 1: rec(5, fresh), 0: rec(6, fresh)},
			config.Retention{MaxRecords: ptr[int64](3)}, true, []int{3}, 0, 0},
		{"CorruptBlankFuture", layout{3: rec(1, old) + frag + "\n", 2: rec(2, old) + "\n" + frag + "\n" + rec(3, future) + rec(4, fresh), 0: rec(5, fresh)},
			age, true, []int{3}, 1, 1},
		{"RewriteOnly", layout{1: rec(1, old) + rec(2, fresh), 0: rec(3, fresh)}, age, true, nil, 0, 0},
		{"DropsOnly", layout{2: rec(1, old), 1: rec(2, fresh), 0: rec(3, fresh)}, age, false, []int{2}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := lay(t, tt.l)
			before := contents(t, active)
			inodes := inodesOf(t, active)
			b := newBackend(t, active, 1<<20, 10)
			ctx := context.Background()
			pol := backends.Policy{Retention: tt.ret, Now: backendtest.Now, MaxClockSkew: 5 * time.Minute}
			p, err := b.Plan(ctx, pol)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			full := p.Stats()
			rs, ok := p.(backends.RewriteSkipper)
			if !ok {
				t.Fatal("a rotating store's plan does not implement backends.RewriteSkipper")
			}
			cheap, ok := rs.WithoutRewrites()
			if ok != tt.rewrites {
				t.Fatalf("WithoutRewrites ok: got %v, want %v (plan %+v)", ok, tt.rewrites, full.Segments)
			}
			if !ok {
				if full.Segments.Rewritten != 0 {
					t.Errorf("no rewrites to skip, but the plan rewrites %d segments", full.Segments.Rewritten)
				}
				return
			}
			// What the plan without rewrites removes: the dropped
			// segments, whole.
			var dropRecs, dropBytes int64
			for _, i := range tt.dropped {
				dropBytes += int64(len(tt.l[i]))
				dropRecs += recordsIn(tt.l[i])
			}
			n := int64(len(tt.l))
			if s := cheap.Segments; s.Dropped != int64(len(tt.dropped)) || s.Rewritten != 0 || s.Untouched != n-int64(len(tt.dropped)) {
				t.Errorf("segments without rewrites: got %+v, want %d dropped, 0 rewritten", s, len(tt.dropped))
			}
			if full.Segments.Dropped != int64(len(tt.dropped)) || full.Segments.Rewritten == 0 {
				t.Errorf("whole plan: got %+v, want the same drops and a rewrite", full.Segments)
			}
			if cheap.Removed() != dropRecs || cheap.Reclaimed() != dropBytes || cheap.Quarantined != tt.quarantine || cheap.BlankLines != 0 ||
				cheap.RecordsBefore != full.RecordsBefore || cheap.RecordsAfter != full.RecordsBefore-cheap.Removed() || cheap.BytesBefore != full.BytesBefore {
				t.Errorf("stats without rewrites: got %+v, want %d records and %d bytes dropped, %d quarantined", cheap, dropRecs, dropBytes, tt.quarantine)
			}
			if cheap.Removed() >= full.Removed() && cheap.Reclaimed() >= full.Reclaimed() {
				t.Errorf("the rewrites remove nothing: plan %+v, without rewrites %+v", full, cheap)
			}
			if cheap.HasOldest {
				t.Errorf("oldest kept %v reported, but the skipped rewrite's oldest record is not known", cheap.OldestKept)
			}
			if cheap.Future != tt.future {
				t.Errorf("future-dated kept: got %d, want %d", cheap.Future, tt.future)
			}
			// Asking changes nothing: the plan still rewrites.
			if again := p.Stats(); again.Segments.Rewritten != full.Segments.Rewritten || again.Reclaimed() != full.Reclaimed() {
				t.Errorf("WithoutRewrites changed the plan: %+v", again)
			}
			rs.SkipRewrites()
			if got := p.Stats(); got.Reclaimed() != cheap.Reclaimed() || got.Segments.Rewritten != 0 {
				t.Errorf("stats after SkipRewrites: got %+v, want %+v", got, cheap)
			}
			if err := b.Recover(ctx); err != nil {
				t.Fatal(err)
			}
			got, err := b.Apply(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if got.Removed() != cheap.Removed() || got.Reclaimed() != cheap.Reclaimed() || got.Quarantined != cheap.Quarantined ||
				got.Segments.Dropped != cheap.Segments.Dropped || got.Segments.Rewritten != 0 {
				t.Errorf("applied: got %+v, want %+v", got, cheap)
			}
			after := contents(t, active)
			afterIDs := inodesOf(t, active)
			dropped := map[int]bool{}
			for _, i := range tt.dropped {
				dropped[i] = true
			}
			// The survivors keep their order and content; Papyra's
			// names may shift down over the dropped ones, but a kept
			// segment is never copied: its inode is the same.
			var want, have []string
			for i := len(tt.l) * 2; i >= 0; i-- {
				if c, ok := before[i]; ok && !dropped[i] {
					want = append(want, c+"@"+strconv.FormatUint(inodes[name(active, i)], 10))
				}
				if c, ok := after[i]; ok {
					have = append(have, c+"@"+strconv.FormatUint(afterIDs[name(active, i)], 10))
				}
			}
			if !equal(have, want) {
				t.Errorf("store after skipping rewrites:\n got %q\nwant %q", have, want)
			}
			if q, _ := filepath.Glob(filepath.Join(filepath.Dir(filepath.Dir(active)), "*", "quarantine", "*")); tt.quarantine == 0 && len(q) != 0 {
				t.Errorf("quarantine files without a dropped corrupt line: %v", q)
			}
		})
	}
}

// inodesOf returns the inode of every file of active's directory by name.
func inodesOf(t *testing.T, active string) map[string]uint64 {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(active))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for _, e := range ents {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(filepath.Dir(active), e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = st.Ino
	}
	return out
}

func name(active string, i int) string {
	if i == 0 {
		return filepath.Base(active)
	}
	return filepath.Base(active) + "." + strconv.Itoa(i)
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// recordsIn counts the lines of content that are records (not corrupt:
// frag, nor blank).
func recordsIn(content string) int64 {
	var n int64
	for _, l := range splitLines(content) {
		if l != "" && l != frag {
			n++
		}
	}
	return n
}

func splitLines(s string) []string {
	var out []string
	for len(s) > 0 {
		i := 0
		for i < len(s) && s[i] != '\n' {
			i++
		}
		out = append(out, s[:i])
		if i < len(s) {
			i++
		}
		s = s[i:]
	}
	return out
}
