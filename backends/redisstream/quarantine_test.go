package redisstream_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func quarantineOn(t *config.Target) { t.QuarantineCorrupt = ptr(true) }

// corruptStream writes valid records 0..5 interleaved with entries
// Papyra's reader cannot use, and returns the corrupt entries' fields by
// ID. Two odd but valid payloads (JSON whitespace, including a newline,
// around tokens) must stay.
func corruptStream(t *testing.T, write func([]rec)) map[string][]any {
	t.Helper()
	base := time.Now().Add(-time.Minute).UnixMilli()
	ts := float64(time.Now().Unix())
	bad := [][]any{
		{"payload", "no data field"},
		{"data", "not json"},
		{"data", "[1, 2]"},
		{"data", `{"kind": "event", "timestamp": "yesterday"}`},
		{"data", "{\"kind\": \"\xff\"}"},
		{"data", ""},
	}
	var recs []rec
	corrupt := map[string][]any{}
	for i := range 6 {
		recs = append(recs, rec{ms: base + int64(2*i), i: i, ts: ts})
		id := base + int64(2*i) + 1
		recs = append(recs, rec{ms: id, fields: bad[i]})
		corrupt[strconv.FormatInt(id, 10)+"-0"] = bad[i]
	}
	recs = append(recs,
		rec{ms: base + 20, fields: []any{"data", "{\"kind\": \"event\",\n \"payload\": {\"i\": 6}, \"timestamp\": 1.5}"}},
		rec{ms: base + 21, fields: []any{"data", ` {"kind": "event", "payload": {"i": 7}, "timestamp": 1.5} `}},
	)
	write(recs)
	return corrupt
}

func TestQuarantine(t *testing.T) {
	srv := testutil.StartRedis(t)
	testQuarantine(t, []string{srv.Addr})
}

func testQuarantine(t *testing.T, addrs []string) {
	ctx := context.Background()
	c := newClient(t, addrs...)
	const key, qkey = "papyra:local:events", "papyra:local:quarantine:papyra_local_events"
	corrupt := corruptStream(t, func(r []rec) { write(t, c, key, r) })
	b := newBackend(t, target(addrs, quarantineOn, exact))
	st, err := compact(t, b, backends.Policy{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readI(t, c, key), seq(0, 8); !sameInts(got, want) {
		t.Errorf("records left: got %v, want %v", got, want)
	}
	if st.Quarantined != 6 || st.RecordsBefore != 8 || st.RecordsAfter != 8 {
		t.Errorf("stats: got quarantined %d, %d -> %d, want 6, 8 -> 8", st.Quarantined, st.RecordsBefore, st.RecordsAfter)
	}
	msgs, err := c.XRange(ctx, qkey, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 6 {
		t.Fatalf("quarantine entries: got %d, want 6", len(msgs))
	}
	for _, m := range msgs {
		src, _ := m.Values["source_id"].(string)
		fields, ok := corrupt[src]
		if !ok {
			t.Errorf("quarantine entry %s: source_id %q is not a corrupt entry", m.ID, src)
			continue
		}
		wantData := ""
		if fields[0] == "data" {
			wantData = fields[1].(string)
		}
		if m.Values["source"] != key || m.Values["data"] != wantData {
			t.Errorf("quarantine entry %s: got %v, want source %s, data %q", m.ID, m.Values, key, wantData)
		}
		if ts, err := strconv.ParseFloat(m.Values["timestamp"].(string), 64); err != nil || ts < 1e9 {
			t.Errorf("quarantine entry %s: timestamp %v, want str(time.time())", m.ID, m.Values["timestamp"])
		}
	}
}

// TestQuarantine_CrashBetweenCopyAndDelete makes the delete fail after the
// copy, with a user the server lets XADD but not run scripts, as a crash
// between the two steps would leave it: then a run with full rights
// finishes the move without copying anything twice.
func TestQuarantine_CrashBetweenCopyAndDelete(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	must(t, c.Do(ctx, "ACL", "SETUSER", "nolua", "on", ">pw", "~*", "&*", "+@all", "-@scripting").Err())
	const key, qkey = "papyra:local:events", "papyra:local:quarantine:papyra_local_events"
	corruptStream(t, func(r []rec) { write(t, c, key, r) })

	crippled := newBackend(t, target([]string{srv.Addr}, quarantineOn, func(t *config.Target) {
		t.Username, t.Password, t.LeaseTTL = "nolua", "pw", ptr(config.Duration(time.Second))
	}))
	_, err := compact(t, crippled, backends.Policy{Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("got %v, want a NOPERM error naming %s and %s", err, srv.Addr, key)
	}
	if n := xlen(t, c, qkey); n != 6 {
		t.Fatalf("quarantine after the failed run: got %d entries, want 6 (copied, not deleted)", n)
	}
	if n := xlen(t, c, key); n != 14 {
		t.Fatalf("source after the failed run: got %d entries, want 14", n)
	}
	// The crippled run could not release its lease either: it expires.
	waitGone(t, c, "papyra-compact:lease:{papyra:local}")

	b := newBackend(t, target([]string{srv.Addr}, quarantineOn))
	st, err := compact(t, b, backends.Policy{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if n := xlen(t, c, qkey); n != 6 {
		t.Errorf("quarantine after the retry: got %d entries, want 6 (none twice)", n)
	}
	if got, want := readI(t, c, key), seq(0, 8); !sameInts(got, want) {
		t.Errorf("records left: got %v, want %v", got, want)
	}
	if st.Quarantined != 6 {
		t.Errorf("Quarantined: got %d, want 6", st.Quarantined)
	}
}

// waitGone waits until key no longer exists (an expiring lease).
func waitGone(t *testing.T, c redis.UniversalClient, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.Exists(context.Background(), key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still exists after 5 s", key)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
