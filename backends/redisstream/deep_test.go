package redisstream_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// deepRecord is a valid Papyra record whose payload nests depth levels
// of arrays; sep goes between tokens (JSON whitespace).
func deepRecord(i, depth int, ts float64, sep string) string {
	return fmt.Sprintf(`{"kind": "event",%s"payload": {"i": %d, "deep": %s%s%s},%s"timestamp": %v}`,
		sep, i, strings.Repeat("["+sep, depth), "1", strings.Repeat(sep+"]", depth), sep, ts)
}

// TestDeepEntries: records nested deeper than pyjson.DefaultMaxDepth
// (900) are valid JSON that Papyra's reader may read (it depends on its
// Python's recursion limit): they must be kept in place, never
// quarantined, whatever the depth and the payload's whitespace, in every
// mode that reads them. Truly broken deep payloads are still quarantined.
func TestDeepEntries(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	for _, mode := range []struct {
		name string
		mod  func(*config.Target)
	}{
		{"Quarantine", func(*config.Target) {}},
		{"ByTimestamp", func(t *config.Target) { t.AgeBy = "timestamp" }},
		{"NoQuarantine", func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }},
	} {
		t.Run(mode.name, func(t *testing.T) {
			sys := "deep-" + strings.ToLower(mode.name)
			key := "papyra:" + sys + ":events"
			qkey := "papyra:" + sys + ":quarantine:papyra_" + sys + "_events"
			now := time.Now().Truncate(time.Millisecond)
			old := now.Add(-48 * time.Hour)
			fresh := now.Add(-time.Minute)
			ts := float64(fresh.UnixMilli()) / 1000
			recs := series(old, 5, time.Millisecond) // old records: age removes them
			keep := map[string]string{}
			for j, d := range []struct {
				depth int
				sep   string
			}{{950, ""}, {950, "\n"}, {5000, ""}, {5000, " \r\n"}, {20000, ""}} {
				data := deepRecord(100+j, d.depth, ts, d.sep)
				ms := fresh.UnixMilli() + int64(j)
				recs = append(recs, rec{ms: ms, fields: []any{"data", data}})
				keep[fmt.Sprintf("%d-0", ms)] = data
			}
			// Deep but broken (never closed): corrupt, quarantined by
			// default.
			broken := `{"kind": "event", "payload": ` + strings.Repeat("[", 3000) + `, "timestamp": 1}`
			recs = append(recs, rec{ms: fresh.UnixMilli() + 100, fields: []any{"data", broken}})
			recs = append(recs, series(fresh.Add(time.Second), 3, time.Millisecond)...)
			write(t, c, key, recs)

			b := newBackend(t, target([]string{srv.Addr}, system(sys), exact, mode.mod))
			st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range readRaw(t, c, key) {
				if len(e) == 3 && e[1] == "data" {
					got[e[0]] = e[2]
				}
			}
			for id, data := range keep {
				if got[id] != data {
					t.Errorf("deep record %s (%d bytes) is gone or changed", id, len(data))
				}
			}
			var moved []string
			for _, e := range readRaw(t, c, qkey) {
				moved = append(moved, e[0])
			}
			wantMoved := 1
			if mode.name == "NoQuarantine" {
				wantMoved = 0
			}
			if len(moved) != wantMoved || st.Quarantined != int64(wantMoved) {
				t.Errorf("quarantined %d (stats %d), want only the broken entry (%d): %v", len(moved), st.Quarantined, wantMoved, moved)
			}
			if st.RemovedAge != 5 {
				t.Errorf("removed by age %d, want the 5 old records", st.RemovedAge)
			}
			if mode.name != "NoQuarantine" && st.RecordsAfter != 3 {
				t.Errorf("records after %d, want 3 (deep entries are kept but not counted as records)", st.RecordsAfter)
			}
			t.Logf("notes: %v", st.Notes)
		})
	}
}

// TestDeepEntries_NotCountedForBytes: a deep entry is not a record, so it
// never uses up max_total_bytes: walking back from the newest entry
// without a scan, the records behind a deep one that alone would not fit
// the budget are kept.
func TestDeepEntries_NotCountedForBytes(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:local:events"
	now := time.Now().Truncate(time.Millisecond)
	recs := series(now.Add(-time.Minute), 5, time.Millisecond)
	recs = append(recs, rec{ms: now.Add(-time.Second).UnixMilli(), fields: []any{"data", deepRecord(99, 2000, float64(now.Unix()), "")}})
	write(t, c, key, recs)
	b := newBackend(t, target([]string{srv.Addr}, exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxTotalBytes: ptr[int64](2000)}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if n := xlen(t, c, key); n != 6 || st.Removed() != 0 {
		t.Errorf("%d entries left, removed %d; want all 6 (5 records of about 150 bytes fit 2000; the deep entry does not count)", n, st.Removed())
	}
}
