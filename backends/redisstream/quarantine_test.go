package redisstream_test

import (
	"context"
	"slices"
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

// readRaw returns every entry of key with its fields in order, as the
// server holds them (go-redis's XMessage is a map).
func readRaw(t testing.TB, c redis.UniversalClient, key string) [][]string {
	t.Helper()
	res, err := c.Do(context.Background(), "XRANGE", key, "-", "+").Slice()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	var out [][]string
	for _, r := range res {
		pair := r.([]any)
		e := []string{pair[0].(string)}
		for _, f := range pair[1].([]any) {
			e = append(e, f.(string))
		}
		out = append(out, e)
	}
	return out
}

// checkQuarantined checks that qkey holds, for every source ID of want,
// exactly one entry: Papyra's fields source, data (the raw payload, or
// "" without one) and timestamp, then source_id and a reason, then every
// field/value pair of the original, in order, each name prefixed
// "field:".
func checkQuarantined(t *testing.T, c redis.UniversalClient, key, qkey string, want map[string][]any) {
	t.Helper()
	got := readRaw(t, c, qkey)
	if len(got) != len(want) {
		t.Fatalf("quarantine %s: got %d entries, want %d", qkey, len(got), len(want))
	}
	seen := map[string]bool{}
	for _, e := range got {
		qid, f := e[0], e[1:]
		if len(f) < 10 || f[0] != "source" || f[1] != key || f[2] != "data" || f[4] != "timestamp" || f[6] != "source_id" || f[8] != "reason" || f[9] == "" {
			t.Errorf("quarantine entry %s: got %q, want source, data, timestamp, source_id, reason first", qid, f)
			continue
		}
		src := f[7]
		fields, ok := want[src]
		if !ok || seen[src] {
			t.Errorf("quarantine entry %s: source_id %q is not a corrupt entry, or is there twice", qid, src)
			continue
		}
		seen[src] = true
		wantData := ""
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "data" {
				wantData = fields[i+1].(string)
			}
		}
		if f[3] != wantData {
			t.Errorf("quarantine entry %s: data %q, want %q", qid, f[3], wantData)
		}
		if ts, err := strconv.ParseFloat(f[5], 64); err != nil || ts < 1e9 {
			t.Errorf("quarantine entry %s: timestamp %v, want str(time.time())", qid, f[5])
		}
		var wantPairs []string
		for i := 0; i+1 < len(fields); i += 2 {
			wantPairs = append(wantPairs, "field:"+fields[i].(string), fields[i+1].(string))
		}
		if !slices.Equal(f[10:], wantPairs) {
			t.Errorf("quarantine entry %s of %s: original pairs %q, want %q", qid, src, f[10:], wantPairs)
		}
	}
}

func testQuarantine(t *testing.T, addrs []string) {
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
	checkQuarantined(t, c, key, qkey, corrupt)
}

// TestQuarantine_WholeEntries: old entries with fields besides data, or
// none, or data twice, are moved whole, by default (no
// quarantine_corrupt in the target), when retention removes them; the
// opt-out removes them counted apart from records.
func TestQuarantine_WholeEntries(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := time.Now().Truncate(time.Millisecond)
	old := now.Add(-48 * time.Hour)
	bad := [][]any{
		{"payload", "{\"kind\": \"event\", \"timestamp\": 1.0}"},
		{"foo", "bar", "baz", "qux"},
		{"data", "[1,2,3]", "note", "kept with it"},
		{"data", "{\"also\": \"data\"}", "data", "not json", "x", ""}, // Papyra's dict takes the last
		{"data", "{\"kind\": \"event\", \"timestamp\": \"yesterday\"}", "bin", "\x00\xff\r\n"},
	}
	fill := func(sys string) map[string][]any {
		key := "papyra:" + sys + ":events"
		want := map[string][]any{}
		var recs []rec
		for i, f := range bad {
			ms := old.Add(time.Duration(i) * time.Second).UnixMilli()
			recs = append(recs, rec{ms: ms, i: 100 + i, ts: float64(ms) / 1000}, rec{ms: ms, seq: 1, fields: f})
			want[strconv.FormatInt(ms, 10)+"-1"] = f
		}
		recs = append(recs, series(now.Add(-time.Minute), 3, time.Second)...)
		write(t, c, key, recs)
		return want
	}
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now}

	t.Run("Default", func(t *testing.T) {
		want := fill("whole")
		key := "papyra:whole:events"
		b := newBackend(t, target([]string{srv.Addr}, system("whole"), exact))
		st, err := compact(t, b, pol)
		if err != nil {
			t.Fatal(err)
		}
		if got := readI(t, c, key); !sameInts(got, seq(0, 3)) {
			t.Errorf("records left: got %v, want the 3 fresh ones", got)
		}
		checkQuarantined(t, c, key, "papyra:whole:quarantine:papyra_whole_events", want)
		if st.Quarantined != int64(len(bad)) || st.RemovedAge != int64(len(bad)) || st.Stream.RemovedCorrupt != 0 {
			t.Errorf("stats: quarantined %d, removed by age %d, corrupt %d; want %d, %d, 0", st.Quarantined, st.RemovedAge, st.Stream.RemovedCorrupt, len(bad), len(bad))
		}
		if n := c.Exists(context.Background(), "papyra-compact:moves:{papyra:whole:quarantine:papyra_whole_events}").Val(); n != 0 {
			t.Errorf("the move index is left behind after every move finished")
		}
	})

	t.Run("OptOut", func(t *testing.T) {
		fill("optout")
		key := "papyra:optout:events"
		b := newBackend(t, target([]string{srv.Addr}, system("optout"), exact, func(t *config.Target) { t.QuarantineCorrupt = ptr(false) }))
		st, err := compact(t, b, pol)
		if err != nil {
			t.Fatal(err)
		}
		if got := readI(t, c, key); !sameInts(got, seq(0, 3)) {
			t.Errorf("records left: got %v, want the 3 fresh ones", got)
		}
		if st.Quarantined != 0 || st.RemovedAge != int64(len(bad)) || st.Stream.RemovedCorrupt != int64(len(bad)) {
			t.Errorf("stats: quarantined %d, removed by age %d, corrupt %d; want 0, %d, %d", st.Quarantined, st.RemovedAge, st.Stream.RemovedCorrupt, len(bad), len(bad))
		}
		if n := c.Exists(context.Background(), "papyra:optout:quarantine:papyra_optout_events").Val(); n != 0 {
			t.Errorf("opt-out: a quarantine stream was written")
		}
	})
}

// TestQuarantine_CrashBetweenCopyAndDelete makes the delete fail after the
// copy, with a user the server lets run scripts and XADD but not XDEL
// (and not ACL, so the agent cannot check first), as a crash between the
// two steps would leave it: the failure names the command and the ACL
// user, and a run with full rights finishes the move without copying
// anything twice.
func TestQuarantine_CrashBetweenCopyAndDelete(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	must(t, c.Do(ctx, "ACL", "SETUSER", "noxdel", "on", ">pw", "~*", "&*", "+@all", "-xdel", "-acl").Err())
	const key, qkey = "papyra:local:events", "papyra:local:quarantine:papyra_local_events"
	corrupt := corruptStream(t, func(r []rec) { write(t, c, key, r) })

	crippled := newBackend(t, target([]string{srv.Addr}, quarantineOn, func(t *config.Target) {
		t.Username, t.Password, t.LeaseTTL = "noxdel", "pw", ptr(config.Duration(time.Second))
	}))
	_, err := compact(t, crippled, backends.Policy{Now: time.Now()})
	if err == nil || !strings.Contains(err.Error(), srv.Addr) || !strings.Contains(err.Error(), key) ||
		!strings.Contains(err.Error(), "XDEL") || !strings.Contains(err.Error(), "ACL user noxdel") {
		t.Fatalf("got %v, want an error naming %s, %s, XDEL and the ACL user", err, srv.Addr, key)
	}
	if n := xlen(t, c, qkey); n != 1 {
		t.Fatalf("quarantine after the failed run: got %d entries, want 1 (copied, not deleted)", n)
	}
	if n := xlen(t, c, key); n != 14 {
		t.Fatalf("source after the failed run: got %d entries, want 14", n)
	}
	// The crippled run released its lease (the script that does it needs
	// no XDEL), or it expires.
	waitGone(t, c, "papyra-compact:lease:{papyra:local}")

	b := newBackend(t, target([]string{srv.Addr}, quarantineOn))
	st, err := compact(t, b, backends.Policy{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	checkQuarantined(t, c, key, qkey, corrupt)
	if got, want := readI(t, c, key), seq(0, 8); !sameInts(got, want) {
		t.Errorf("records left: got %v, want %v", got, want)
	}
	if st.Quarantined != 6 {
		t.Errorf("Quarantined: got %d, want 6", st.Quarantined)
	}
}

// TestPermissions: a user who may not run a command the run needs is
// refused before anything changes, with the command and the ACL user
// named (ACL DRYRUN), instead of failing inside a script part way.
func TestPermissions(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key, qkey = "papyra:local:events", "papyra:local:quarantine:papyra_local_events"
	now := time.Now()
	write(t, c, key, series(now.Add(-48*time.Hour), 5, time.Second))
	corruptStream(t, func(r []rec) { write(t, c, key, r) })
	for _, cmd := range []string{"xtrim", "xadd", "xdel", "hset"} {
		t.Run(cmd, func(t *testing.T) {
			user := "no" + cmd
			must(t, c.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-"+cmd).Err())
			b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) { t.Username, t.Password = user, "pw" }))
			_, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(3600.0)}, Now: now})
			if err == nil || !strings.Contains(err.Error(), "ACL user "+user) || !strings.Contains(strings.ToLower(err.Error()), cmd) {
				t.Fatalf("got %v, want a refusal naming the ACL user %s and %s", err, user, cmd)
			}
			if n := xlen(t, c, key); n != 19 {
				t.Errorf("source: %d entries, want 19 (nothing changed)", n)
			}
			if n := c.Exists(ctx, qkey).Val(); n != 0 {
				t.Errorf("a quarantine stream was written before the refusal")
			}
		})
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

// TestQuarantine_VerifiesCopy: the original is removed only after its
// copy was read back and found equal. A move index that points at an
// entry of the quarantine stream holding something else (left by a
// damaged run, or edited by hand) makes the move fail and the original
// stay.
func TestQuarantine_VerifiesCopy(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key, qkey = "papyra:local:events", "papyra:local:quarantine:papyra_local_events"
	write(t, c, key, []rec{{ms: time.Now().Add(-time.Minute).UnixMilli(), fields: []any{"payload", "lost without its copy"}}})
	id := readRaw(t, c, key)[0][0]
	other, err := c.XAdd(ctx, &redis.XAddArgs{Stream: qkey, Values: []any{"source", "elsewhere", "data", "x", "timestamp", "1.0"}}).Result()
	must(t, err)
	must(t, c.HSet(ctx, "papyra-compact:moves:{"+qkey+"}", key+" "+id, other).Err())
	_, err = compact(t, newBackend(t, target([]string{srv.Addr})), backends.Policy{Now: time.Now()})
	wantFailure(t, err, qkey, "does not match")
	if got := readRaw(t, c, key); len(got) != 1 || got[0][2] != "lost without its copy" {
		t.Errorf("source: got %q, want the entry left in place", got)
	}
}
