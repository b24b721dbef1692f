package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
)

// TestFuture_StateAndMetric: the future-dated records a run kept go into
// the state (an Infinity too, which a JSON number cannot hold) and the
// papyra_compact_future_records gauge.
func TestFuture_StateAndMetric(t *testing.T) {
	cfg := metricsConfig(t.TempDir())
	cfg.Targets = []config.Target{{Name: "orders", Kind: config.KindJSONL, Path: "/nonexistent/orders.jsonl"}}
	rec, err := agent.NewRecorder(cfg, all.Backends(), agent.RecorderOptions{Version: "v", GoVersion: "go"})
	must(t, err)
	r := okResult("orders", config.KindJSONL, t0())
	r.Stats.Future, r.Stats.NewestFuture = 3, math.Inf(1)
	must(t, rec.Record(r))
	st, found, err := agent.LoadTargetState(cfg.StateDir, "orders")
	if err != nil || !found {
		t.Fatalf("load state: %v (found %v)", err, found)
	}
	if st.Store.Future != 3 || st.Store.NewestFuture == nil || !math.IsInf(float64(*st.Store.NewestFuture), 1) {
		t.Errorf("state: future %d, newest %v; want 3, Infinity", st.Store.Future, st.Store.NewestFuture)
	}
	text, err := os.ReadFile(cfg.Metrics.Textfile)
	must(t, err)
	if want := `papyra_compact_future_records{backend="jsonl",target="orders"} 3`; !strings.Contains(string(text), want) {
		t.Errorf("textfile lacks %s:\n%s", want, text)
	}
}

// TestFuture_LoggedOnce: a run that keeps future-dated records logs one
// warning with how many, the newest and how far ahead; one that keeps
// none logs nothing of the kind.
func TestFuture_LoggedOnce(t *testing.T) {
	cfg, data := testConfig(t)
	store := filepath.Join(data, "orders.jsonl")
	agedStore(t, store)
	plain := filepath.Join(data, "plain.jsonl")
	if err := os.WriteFile(plain, []byte(record(1, "1794999000.5")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	age := 30 * 86400.0
	cfg.Targets = []config.Target{
		{Name: "orders", Kind: config.KindJSONL, Path: store, Retention: &config.Retention{MaxAgeSeconds: &age}},
		{Name: "plain", Kind: config.KindJSONL, Path: plain},
	}
	var buf bytes.Buffer
	a := agent.New(cfg, all.Backends(), slog.New(slog.NewTextHandler(&buf, nil)))
	res, err := a.RunOnce(context.Background(), agent.Options{Now: explainNow})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Stats.Future != 4 || res[1].Stats.Future != 0 {
		t.Errorf("future: %d and %d, want 4 and 0", res[0].Stats.Future, res[1].Stats.Future)
	}
	// Kept: 23 records (the 2 corrupt lines went to quarantine), the
	// future-dated ones among them.
	lines := testLines(t, store)
	if len(lines) != 23 || !strings.Contains(lines[22], `"i": 26}, "timestamp": Infinity`) || !strings.Contains(lines[19], `"i": 23}`) {
		t.Errorf("store after the run: %d lines, want 23 ending with the future-dated records:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	log := buf.String()
	if n := strings.Count(log, agent.MsgFutureRecords); n != 1 {
		t.Fatalf("log has %d %q lines, want 1:\n%s", n, agent.MsgFutureRecords, log)
	}
	for _, want := range []string{"target=orders", "future_records=4", "newest_future=Infinity", "max_clock_skew=5m0s"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}

func testLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}
