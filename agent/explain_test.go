package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// explainNow is the pinned clock of the explain tests.
var explainNow = time.Unix(1795000000, 0)

// record is one line as Papyra's JSON-lines store writes it.
func record(i int, ts string) string {
	return fmt.Sprintf(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": {"i": %d}, "timestamp": %s}`, i, ts)
}

func stamp(f float64) string {
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// agedStore writes a jsonl store with n records in each age bucket, the
// future-dated ones (one exactly max_clock_skew ahead, which is not), an
// Infinity, and corrupt lines, and returns its content.
func agedStore(t *testing.T, path string) string {
	t.Helper()
	now := float64(explainNow.Unix())
	var b strings.Builder
	i := 0
	add := func(ts float64, n int) {
		for range n {
			i++
			b.WriteString(record(i, stamp(ts)) + "\n")
		}
	}
	add(now-100*86400, 1) // older
	add(now-60*86400, 2)  // 30d to 90d: removed by max_age 30d
	add(now-10*86400, 3)  // 7d to 30d
	add(now-2*86400, 4)   // 1d to 7d
	add(now-2*3600, 5)    // 1h to 1d
	b.WriteString("{\"kind\": \"event\", \"timest\n")
	add(now-60, 6)      // under 1h
	add(now+300, 1)     // exactly max_clock_skew ahead: under 1h, not future
	add(now+300.001, 1) // future
	add(now+7200, 2)    // future
	add(math.Inf(1), 1) // future, the newest
	b.WriteString("not json\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExplain_JSONL(t *testing.T) {
	cfg, data := testConfig(t)
	store := filepath.Join(data, "orders.jsonl")
	content := agedStore(t, store)
	age := 30 * 86400.0
	cfg.Targets = []config.Target{{Name: "orders", Kind: config.KindJSONL, Path: store, Retention: &config.Retention{MaxAgeSeconds: &age}}}
	e, err := agent.Explain(context.Background(), cfg, all.Backends(), "orders", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != agent.SourceStore || e.Unreadable != "" || e.Missing || e.Lock != "taken" {
		t.Errorf("source %q, unreadable %q, missing %v, lock %q: want the store read now under its lock", e.Source, e.Unreadable, e.Missing, e.Lock)
	}
	want := map[string]int64{"1h": 7, "1d": 5, "7d": 4, "30d": 3, "90d": 2, "older": 1, "future": 4, "undated": 0}
	var total int64
	for _, r := range e.Ages {
		if r.Records != want[r.Age] {
			t.Errorf("ages %s: %d records, want %d", r.Age, r.Records, want[r.Age])
		}
		if r.Records > 0 && r.Bytes < r.Records*100 {
			t.Errorf("ages %s: %d bytes for %d records", r.Age, r.Bytes, r.Records)
		}
		total += r.Records
	}
	if len(e.Ages) != 8 || total != e.Records || e.Records != 26 {
		t.Errorf("ages %+v: want 8 rows summing to the store's 26 records (got %d)", e.Ages, e.Records)
	}
	if e.Remove.Records != 3 || e.Remove.ByAge != 3 || e.Keep.Records != 23 || e.Remove.Freed <= 0 {
		t.Errorf("would remove %+v, keep %+v: want 3 by age, 23 kept", e.Remove, e.Keep)
	}
	if e.Future.Records != 4 || e.Future.Newest == nil || !math.IsInf(float64(*e.Future.Newest), 1) {
		t.Errorf("future %+v: want 4, the newest Infinity", e.Future)
	}
	if e.Corrupt != 2 || len(e.Held) != 0 || e.Active != nil {
		t.Errorf("corrupt %d, held %+v, active %+v: want 2 corrupt lines, nothing held, no active segment", e.Corrupt, e.Held, e.Active)
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	for _, field := range []string{`"newest":"Infinity"`, `"source":"store"`, `"would_remove":{"records":3,"age":3,`, `{"age":"future","records":4,`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("json lacks %s:\n%s", field, b)
		}
	}
	var back agent.Explanation
	if err := json.Unmarshal(b, &back); err != nil || !math.IsInf(float64(*back.Future.Newest), 1) {
		t.Errorf("json round trip: %v, newest %v", err, back.Future.Newest)
	}
	if got, _ := os.ReadFile(store); string(got) != content {
		t.Error("explain changed the store")
	}
	testutil.AssertNoSideFiles(t, data)
}

// TestExplain_Refusals: a store the clock guard refuses is still shown by
// age, with the refusal and without age retention's removals; one the
// safety valve would refuse shows what retention wants and the refusal.
func TestExplain_Refusals(t *testing.T) {
	cfg, data := testConfig(t)
	boot := filepath.Join(data, "boot.jsonl")
	var b strings.Builder
	for i := range 5 {
		b.WriteString(record(i, stamp(9000.25+float64(i))) + "\n")
	}
	if err := os.WriteFile(boot, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	valve := filepath.Join(data, "valve.jsonl")
	agedStore(t, valve)
	age, n := 86400.0, int64(3)
	frac := config.Fraction(0.1)
	big := config.Amount{Percent: 50}
	cfg.Targets = []config.Target{
		{Name: "boot", Kind: config.KindJSONL, Path: boot, Retention: &config.Retention{MaxAgeSeconds: &age, MaxRecords: &n}},
		{Name: "valve", Kind: config.KindJSONL, Path: valve, Retention: &config.Retention{MaxAgeSeconds: &age}, MaxRemoveFraction: &frac},
		// min_reclaim skips before the valve is asked, as a run does.
		{Name: "small", Kind: config.KindJSONL, Path: valve, Retention: &config.Retention{MaxAgeSeconds: &age}, MaxRemoveFraction: &frac, MinReclaim: &big},
	}
	e, err := agent.Explain(context.Background(), cfg, all.Backends(), "boot", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Held) != 1 || e.Held[0].Reason != "clock_guard" || !strings.Contains(e.Held[0].Detail, "seconds since boot") {
		t.Fatalf("held %+v: want the clock guard's refusal", e.Held)
	}
	if e.Ages == nil || e.Records != 5 || e.Remove.ByAge != 0 || e.Remove.ByCount != 2 {
		t.Errorf("ages %v, records %d, remove %+v: want the store dated, the count limit applied, age retention not", e.Ages, e.Records, e.Remove)
	}
	if got, _ := os.ReadFile(boot); string(got) != b.String() {
		t.Error("explain changed the store")
	}

	e, err = agent.Explain(context.Background(), cfg, all.Backends(), "valve", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Held) != 1 || e.Held[0].Reason != "safety_valve" || e.Held[0].Records != 10 || !strings.Contains(e.Held[0].Detail, "would remove") {
		t.Errorf("held %+v: want the safety valve's refusal of 10 records", e.Held)
	}

	e, err = agent.Explain(context.Background(), cfg, all.Backends(), "small", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Held) != 1 || e.Held[0].Reason != "below_min_reclaim" || e.Held[0].Records != 10 || !strings.Contains(e.Held[0].Detail, "below min_reclaim") {
		t.Errorf("held %+v: want the 10 records a run leaves below min_reclaim", e.Held)
	}
}

// TestExplain_Rotating: a rotating store's active segment is named, and
// every record is dated, also those a run would drop unread.
func TestExplain_Rotating(t *testing.T) {
	cfg, data := testConfig(t)
	path := filepath.Join(data, "audit.log")
	now := float64(explainNow.Unix())
	for i, ts := range []float64{now - 40*86400, now - 3*86400, now - 60, now + 3600} {
		name := path
		if i < 3 {
			name = path + "." + strconv.Itoa(3-i)
		}
		if err := os.WriteFile(name, []byte(record(i, stamp(ts))+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n, maxBytes, maxFiles := int64(1), int64(1<<20), int64(5)
	cfg.Targets = []config.Target{{Name: "audit", Kind: config.KindRotating, Path: path, MaxBytes: &maxBytes, MaxFiles: &maxFiles,
		Retention: &config.Retention{MaxRecords: &n}}}
	e, err := agent.Explain(context.Background(), cfg, all.Backends(), "audit", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Active == nil || e.Active.Path != path || e.Active.Bytes <= 0 {
		t.Errorf("active segment %+v: want %s", e.Active, path)
	}
	got := map[string]int64{}
	for _, r := range e.Ages {
		got[r.Age] = r.Records
	}
	if got["90d"] != 1 || got["7d"] != 1 || got["1h"] != 1 || got["future"] != 1 || e.Records != 4 {
		t.Errorf("ages %v of %d records: want one in each of 90d, 7d, 1h, future", got, e.Records)
	}
	if e.Future.Records != 1 || e.Remove.ByCount != 3 {
		t.Errorf("future %+v, remove %+v: want the kept future record counted, 3 removed by count", e.Future, e.Remove)
	}
}

func TestExplain_MissingAndUnknown(t *testing.T) {
	cfg, data := testConfig(t)
	cfg.Targets = []config.Target{{Name: "gone", Kind: config.KindJSONL, Path: filepath.Join(data, "none.jsonl")}}
	e, err := agent.Explain(context.Background(), cfg, all.Backends(), "gone", explainNow)
	if err != nil || !e.Missing || e.Source != agent.SourceStore {
		t.Errorf("missing store: %+v, %v", e, err)
	}
	if _, err := agent.Explain(context.Background(), cfg, all.Backends(), "nope", explainNow); err == nil {
		t.Error("unknown target: no error")
	}
}

// TestExplain_RedisGroup: entries retention would remove that a consumer
// group still needs are explained as held by that group, against a real
// redis-server; a server that cannot be reached falls back to the last
// run's figures, marked as such.
func TestExplain_RedisGroup(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer c.Close()
	ctx := context.Background()
	key := "papyra:local:events"
	old := explainNow.Add(-48 * time.Hour).UnixMilli()
	for i := range 10 {
		ts := float64(explainNow.Unix()) - 48*3600
		if i >= 6 {
			ts = float64(explainNow.Unix()) - 60
		}
		id := fmt.Sprintf("%d-%d", old, i+1)
		if i >= 6 {
			id = fmt.Sprintf("%d-%d", explainNow.Add(-time.Minute).UnixMilli(), i)
		}
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: map[string]any{"data": record(i, stamp(ts))}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// The group has read the first two entries and acknowledged none,
	// and has not been delivered the rest.
	if err := c.XGroupCreate(ctx, key, "billing", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "c1", Streams: []string{key, ">"}, Count: 2}).Err(); err != nil {
		t.Fatal(err)
	}
	cfg, _ := testConfig(t)
	age := 86400.0
	cfg.Targets = []config.Target{
		{Name: "events", Kind: config.KindRedis, Addrs: []string{srv.Addr}, Retention: &config.Retention{MaxAgeSeconds: &age}},
		{Name: "down", Kind: config.KindRedis, Addrs: []string{"127.0.0.1:1"}, Retention: &config.Retention{MaxAgeSeconds: &age}},
	}
	e, err := agent.Explain(ctx, cfg, all.Backends(), "events", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != agent.SourceStore || e.Records != 10 || e.Ages == nil {
		t.Fatalf("source %q (%s), %d records, ages %v: want the stream read and dated", e.Source, e.Unreadable, e.Records, e.Ages)
	}
	var held int64
	for _, h := range e.Held {
		if h.Reason == "held_by_group" && strings.Contains(h.Detail, "billing") {
			held += h.Records
		}
	}
	if held != 6 || e.Remove.Records != 0 {
		t.Errorf("held %+v, remove %+v: want the 6 old entries held by group billing, nothing removed", e.Held, e.Remove)
	}
	if n, _ := c.XLen(ctx, key).Result(); n != 10 {
		t.Errorf("explain changed the stream: %d entries", n)
	}

	// Unreachable: the last run's figures, as of that run.
	at := explainNow.Add(-time.Hour)
	st := agent.TargetState{Target: "down", Backend: "redis"}
	st.Apply(agent.Result{Target: "down", Kind: "redis", Outcome: agent.OutcomeOK, Started: at,
		Stats: backends.Stats{RecordsBefore: 50, RecordsAfter: 40, RemovedAge: 10, Future: 2, NewestFuture: float64(explainNow.Unix()) + 86400,
			Stream: &backends.StreamStats{HeldBack: []backends.HeldBack{{Stream: key, Group: "billing", Entries: 7}}}}})
	if err := agent.SaveTargetState(cfg.StateDir, st); err != nil {
		t.Fatal(err)
	}
	e, err = agent.Explain(ctx, cfg, all.Backends(), "down", explainNow)
	if err != nil {
		t.Fatal(err)
	}
	if e.Source != agent.SourceLastRun || e.AsOf == nil || !e.AsOf.Equal(at) || e.Unreadable == "" {
		t.Fatalf("source %q as of %v, unreadable %q: want the last run's figures as of %v", e.Source, e.AsOf, e.Unreadable, at)
	}
	if e.Records != 50 || e.Remove.Records != 10 || e.Future.Records != 2 || len(e.Held) != 1 || e.Held[0].Records != 7 {
		t.Errorf("from state: %+v", e)
	}
}
