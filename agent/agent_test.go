package agent_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

func testConfig(t *testing.T) (*config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.LockDir = filepath.Join(dir, "lock")
	cfg.QuarantineDir = filepath.Join(dir, "quarantine")
	cfg.Metrics.Textfile = ""
	cfg.Defaults.GracePeriod = config.Duration(10 * time.Millisecond)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	return cfg, data
}

func TestAgent_RunOnce(t *testing.T) {
	cfg, data := testConfig(t)
	store := filepath.Join(data, "orders.jsonl")
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), store)
	link := filepath.Join(data, "alias.jsonl")
	if err := os.Symlink(store, link); err != nil {
		t.Fatal(err)
	}
	n := int64(500)
	cfg.Targets = []config.Target{
		{Name: "orders", Kind: config.KindJSONL, Path: store, Retention: &config.Retention{MaxRecords: &n}},
		{Name: "alias", Kind: config.KindJSONL, Path: link},
		{Name: "missing", Kind: config.KindJSONL, Path: filepath.Join(data, "none.jsonl")},
		{Name: "broken", Kind: config.KindJSONL, Path: data},
		{Name: "mem", Kind: config.KindMemory},
	}
	a := agent.New(cfg, all.Backends(), slog.New(slog.DiscardHandler))

	t.Run("LockedTargetSkipped", func(t *testing.T) {
		// Another run holds the store through the alias's resolved path.
		l, err := agent.TryLock(cfg.LockDir, store, "elsewhere")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Unlock()
		res, err := a.RunOnce(context.Background(), agent.Options{Targets: []string{"alias"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := res[0].Outcome; got != agent.OutcomeLocked {
			t.Fatalf("outcome: got %v, want %v", got, agent.OutcomeLocked)
		}
		if got := agent.Worst(res); got != agent.OutcomeLocked {
			t.Errorf("outcome: got %v, want skipped_locked", got)
		}
		if s := agent.Summary(res[0]); !strings.Contains(s, "skipped") || !strings.Contains(s, "elsewhere") {
			t.Errorf("summary %q does not say it skipped and who holds the lock", s)
		}
	})

	t.Run("AllTargets", func(t *testing.T) {
		var seen []string
		res, err := a.RunOnce(context.Background(), agent.Options{Now: time.Unix(1795000000, 0), OnResult: func(r agent.Result) { seen = append(seen, r.Target) }})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]agent.Outcome{"orders": agent.OutcomeOK, "alias": agent.OutcomeOK, "missing": agent.OutcomeNothingToDo, "broken": agent.OutcomeFailed, "mem": agent.OutcomeOK}
		for _, r := range res {
			if r.Outcome != want[r.Target] {
				t.Errorf("%s: got %v (%v), want %v", r.Target, r.Outcome, r.Err, want[r.Target])
			}
		}
		if len(seen) != len(cfg.Targets) {
			t.Errorf("OnResult called for %v, want every target", seen)
		}
		if got := agent.Worst(res); got != agent.OutcomeFailed {
			t.Errorf("outcome: got %v, want failure", got)
		}
		if got := len(testutil.ReadLines(t, store)); got != 500 {
			t.Errorf("store lines: got %d, want 500", got)
		}
		if s := agent.Summary(res[3]); !strings.Contains(s, "FAILED") || !strings.Contains(s, data) {
			t.Errorf("failed summary %q does not name the path", s)
		}
	})

	t.Run("UnknownTarget", func(t *testing.T) {
		_, err := a.RunOnce(context.Background(), agent.Options{Targets: []string{"nope"}})
		if err == nil || !strings.Contains(err.Error(), `"nope"`) {
			t.Errorf("got %v, want an unknown-target error naming it", err)
		}
	})
}
