package segments_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// shedder builds the backend of active as a backends.Shedder, with its
// environment under a fresh directory.
func shedder(t *testing.T, active string) (backends.Shedder, backends.Env) {
	t.Helper()
	e := env(t.TempDir())
	b := newBackendIn(t, active, 1<<20, 10, e)
	s, ok := b.(backends.Shedder)
	if !ok {
		t.Fatal("the rotating backend does not implement backends.Shedder")
	}
	return s, e
}

// setMtime sets path's modification time to Unix second ts.
func setMtime(t *testing.T, path string, ts float64) {
	t.Helper()
	at := time.Unix(int64(ts), 0)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

var shedNow = float64(backendtest.Now.Unix())

// shedPolicy keeps records younger than a day.
var shedPolicy = backends.ShedPolicy{Now: backendtest.Now, MinKeep: 24 * time.Hour}

func byPosition(cs []backends.ShedSegment) map[int]backends.ShedSegment {
	m := map[int]backends.ShedSegment{}
	for _, c := range cs {
		m[c.Position] = c
	}
	return m
}

// TestShed_Candidates lists every rotated segment (never the active
// file) with its records' span, and judges each by its newest record:
// the modification time stands in where some line's time cannot be read,
// and a segment newer than min_keep, or future-dated, is kept.
func TestShed_Candidates(t *testing.T) {
	old, day := shedNow-10*86400, 86400.0
	nullTS := strings.Replace(rec(99, 0), `"timestamp": 0.0`, `"timestamp": null`, 1)
	active := lay(t, layout{
		0: rec(1, old),                                              // the active file, however old
		1: rec(2, shedNow-3600) + rec(3, old),                       // newest is an hour old: kept
		2: rec(4, old) + "not json\n" + rec(5, old+1),               // old, a corrupt line
		3: nullTS + nullTS,                                          // no datable record
		4: rec(6, old-day) + nullTS,                                 // dated and undated
		5: rec(7, shedNow+7200),                                     // future-dated
		6: rec(8, old-2*day) + rec(9, old-3*day) + `{"torn": tr`,    // a torn last line
		7: rec(10, old) + deepRec(11, 1000, old) + rec(12, old-day), // a line too deep to judge
		8: nullTS + "corrupt\n",                                     // no datable record, written an hour ago
	})
	dir := filepath.Dir(active)
	seg := func(i int) string { return active + "." + string(rune('0'+i)) }
	setMtime(t, seg(3), old)     // undated, written long ago: by mtime, old
	setMtime(t, seg(4), shedNow) // undated line, written now: the mtime wins
	setMtime(t, seg(7), old+100) // a line too deep to judge: the later mtime counts
	setMtime(t, seg(8), shedNow-3600)
	s, _ := shedder(t, active)
	cs, err := s.ShedCandidates(context.Background(), shedPolicy)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 8 {
		t.Fatalf("%d candidates, want the 8 rotated segments: %+v", len(cs), cs)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Position > cs[i-1].Position {
			t.Errorf("candidates not oldest position first: %d after %d", cs[i].Position, cs[i-1].Position)
		}
	}
	m := byPosition(cs)
	if _, ok := m[0]; ok {
		t.Error("the active file is a candidate")
	}
	tests := []struct {
		pos            int
		records, other int64
		time           float64
		from           string
		keep           bool
	}{
		{1, 2, 0, shedNow - 3600, backends.NewestFromRecords, true},
		{2, 2, 1, old + 1, backends.NewestFromRecords, false},
		{3, 2, 0, old, backends.NewestFromMtime, false},
		{4, 2, 0, shedNow, backends.NewestFromMtime, true},
		{5, 1, 0, shedNow + 7200, backends.NewestFromRecords, true},
		{6, 2, 1, old - 2*day, backends.NewestFromRecords, false},
		{7, 2, 1, old + 100, backends.NewestFromMtime, false},
		{8, 1, 1, shedNow - 3600, backends.NewestFromMtime, true},
	}
	for _, tt := range tests {
		c, ok := m[tt.pos]
		if !ok {
			t.Errorf("segment %d missing", tt.pos)
			continue
		}
		if c.Records != tt.records || c.Other != tt.other || c.Time != tt.time || c.TimeFrom != tt.from || (c.Keep != "") != tt.keep {
			t.Errorf("segment %d: records %d other %d time %v from %s keep %q; want %d %d %v %s keep=%v",
				tt.pos, c.Records, c.Other, c.Time, c.TimeFrom, c.Keep, tt.records, tt.other, tt.time, tt.from, tt.keep)
		}
		st, err := os.Stat(filepath.Join(dir, filepath.Base(c.Name)))
		if err != nil || st.Size() != c.Size {
			t.Errorf("segment %d: size %d, file %v", tt.pos, c.Size, err)
		}
	}
	if c := m[6]; !c.HasTimes || c.Oldest != old-3*day || c.Newest != old-2*day {
		t.Errorf("segment 6 span %v..%v (%v), want %v..%v", c.Oldest, c.Newest, c.HasTimes, old-3*day, old-2*day)
	}
	if c := m[3]; c.HasTimes {
		t.Errorf("segment 3 has times %v..%v, want none", c.Oldest, c.Newest)
	}
	// Nothing was changed by listing.
	testutil.AssertNoSideFiles(t, dir)
}

// TestShed_DropsOneSegmentByInode removes exactly the listed inode, also
// after the writer renamed it, quarantines its corrupt lines, and leaves
// every other segment byte for byte.
func TestShed_DropsOneSegmentByInode(t *testing.T) {
	old := shedNow - 10*86400
	l := layout{
		0: rec(1, shedNow),
		1: rec(2, shedNow-60),
		2: rec(3, old) + "garbage line\n" + rec(4, old+5),
	}
	active := lay(t, l)
	s, _ := shedder(t, active)
	ctx := context.Background()
	cs, err := s.ShedCandidates(ctx, shedPolicy)
	if err != nil {
		t.Fatal(err)
	}
	c := byPosition(cs)[2]
	// The writer rotates: .2 becomes .3, .1 becomes .2, the active file .1.
	w := papyraWriter{path: active, maxBytes: int64(len(l[0])), maxFiles: 10}
	if err := w.append(rec(5, shedNow)); err != nil {
		t.Fatal(err)
	}
	st, err := s.Shed(ctx, shedPolicy, c)
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 2 || st.Other != 1 || st.Quarantined != 1 || st.Bytes != int64(len(l[2])) || !st.HasTimes || st.Oldest != old || st.Newest != old+5 {
		t.Errorf("stats %+v", st)
	}
	got := contents(t, active)
	want := layout{0: rec(5, shedNow), 2: l[1], 3: ""}
	delete(want, 3)
	want[1] = l[0]
	if len(got) != len(want) {
		t.Fatalf("store %v, want %v", got, want)
	}
	for i, c := range want {
		if got[i] != c {
			t.Errorf("segment %d: %q, want %q", i, got[i], c)
		}
	}
	q := quarantinedRaw(t, st.QuarantineFile)
	if len(q) != 1 || string(q[0]) != "garbage line" {
		t.Errorf("quarantined %q", q)
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(active))
}

// TestShed_Refuses: a segment that grew or went since the listing, one
// younger than min_keep, the active file, and a store stamped with
// seconds since boot are never shed, and nothing changes.
func TestShed_Refuses(t *testing.T) {
	old := shedNow - 10*86400
	ctx := context.Background()
	base := layout{0: rec(1, shedNow), 1: rec(2, old), 2: rec(3, old)}
	tests := []struct {
		name   string
		l      layout
		change func(t *testing.T, active string, c *backends.ShedSegment)
		pol    backends.ShedPolicy
		want   error
	}{
		{"Grew", base, func(t *testing.T, active string, _ *backends.ShedSegment) {
			f, err := os.OpenFile(active+".2", os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(rec(4, old)); err != nil {
				t.Fatal(err)
			}
		}, shedPolicy, backends.ErrChanged},
		{"Gone", base, func(t *testing.T, active string, _ *backends.ShedSegment) {
			if err := os.Rename(active+".2", filepath.Join(t.TempDir(), "away")); err != nil {
				t.Fatal(err)
			}
		}, shedPolicy, backends.ErrChanged},
		{"YoungerThanMinKeep", base, nil, backends.ShedPolicy{Now: backendtest.Now, MinKeep: 11 * 24 * time.Hour}, backends.ErrUnsafe},
		{"ActiveFile", base, func(t *testing.T, active string, c *backends.ShedSegment) {
			var st os.FileInfo
			st, err := os.Stat(active)
			if err != nil {
				t.Fatal(err)
			}
			c.Ino, c.Size = inode(t, active), st.Size()
		}, shedPolicy, backends.ErrUnsafe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := lay(t, tt.l)
			s, _ := shedder(t, active)
			cs, err := s.ShedCandidates(ctx, tt.pol)
			if err != nil {
				t.Fatal(err)
			}
			c := byPosition(cs)[2]
			if tt.change != nil {
				tt.change(t, active, &c)
			}
			before := contents(t, active)
			if _, err := s.Shed(ctx, tt.pol, c); !errors.Is(err, tt.want) {
				t.Fatalf("Shed: %v, want %v", err, tt.want)
			} else {
				t.Log(err)
			}
			after := contents(t, active)
			if len(after) != len(before) {
				t.Errorf("store changed: %v -> %v", before, after)
			}
			for i := range before {
				if after[i] != before[i] {
					t.Errorf("segment %d changed", i)
				}
			}
			testutil.AssertNoSideFiles(t, filepath.Dir(active))
		})
	}
	t.Run("MonotonicClock", func(t *testing.T) {
		active := lay(t, layout{0: rec(1, 9300), 1: rec(2, 9250.5), 2: rec(3, 9200)})
		s, _ := shedder(t, active)
		_, err := s.ShedCandidates(ctx, shedPolicy)
		if !errors.Is(err, backends.ErrUnsafe) || !strings.Contains(err.Error(), "time_fn=time.time") {
			t.Fatalf("ShedCandidates: %v, want the clock guard's refusal", err)
		}
	})
}

// TestShed_CacheSparesRereading: with a cache, a second listing does not
// read segments that have not changed (same inode, size, mtime and
// ctime); a segment rewritten in place with the same size and mtime
// (its ctime moves) is read again and judged on what it holds now.
func TestShed_CacheSparesRereading(t *testing.T) {
	old := shedNow - 10*86400
	active := lay(t, layout{0: rec(1, shedNow), 1: rec(2, old), 2: rec(3, old)})
	s, _ := shedder(t, active)
	pol := shedPolicy
	pol.Cache = backends.NewShedCache()
	ctx := context.Background()
	if _, err := s.ShedCandidates(ctx, pol); err != nil {
		t.Fatal(err)
	}
	if h := pol.Cache.Hits(); h != 0 {
		t.Fatalf("%d hits on a first listing", h)
	}
	cs, err := s.ShedCandidates(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	if h := pol.Cache.Hits(); h != 2 {
		t.Errorf("%d hits on the second listing, want both rotated segments", h)
	}
	if c := byPosition(cs)[1]; c.Keep != "" || c.Records != 1 {
		t.Errorf("cached candidate %+v", c)
	}
	// Same size, same mtime, a young record now: must be read again.
	st, err := os.Stat(active + ".1")
	if err != nil {
		t.Fatal(err)
	}
	young := rec(2, shedNow-60)
	if len(young) != int(st.Size()) {
		t.Fatalf("test lines differ in length: %d, %d", len(young), st.Size())
	}
	time.Sleep(10 * time.Millisecond) // a ctime the rewrite cannot share with the listing's
	if err := os.WriteFile(active+".1", []byte(young), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(active+".1", st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	cs, err = s.ShedCandidates(ctx, pol)
	if err != nil {
		t.Fatal(err)
	}
	if c := byPosition(cs)[1]; c.Keep == "" {
		t.Errorf("a segment changed in place was judged from the cache: %+v", c)
	}
}
