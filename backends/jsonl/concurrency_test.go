package jsonl_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
)

// TestBackend_ConcurrentWriters runs compactions back to back while four
// separate processes append 50,000 numbered records each the way Papyra
// does. Afterwards every record inside retention is present exactly once
// and every expired seeded record is gone. Repeated 20 times (with -short,
// as under the race detector in CI: 3 rounds of 10,000 records per writer).
func TestBackend_ConcurrentWriters(t *testing.T) {
	const writers = 4
	perWriter, rounds := 50000, 20
	if testing.Short() {
		perWriter, rounds = 10000, 3
	}
	for round := 0; round < rounds; round++ {
		t.Run(fmt.Sprintf("Round%02d", round), func(t *testing.T) {
			concurrentRound(t, writers, perWriter)
		})
	}
}

func concurrentRound(t *testing.T, writers, perWriter int) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	now := time.Now()
	var seed strings.Builder
	for i := 0; i < 2000; i++ {
		ts := float64(now.Unix()) - 10*86400 // expired
		if i%2 == 1 {
			ts = float64(now.Unix()) - 60 // inside retention
		}
		seed.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: ts}.JSON() + "\n")
	}
	if err := os.WriteFile(path, []byte(seed.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e := env(filepath.Join(dir, "agent"))
	e.GracePeriod = 200 * time.Millisecond // Papyra's open-to-write gap under load
	b := newBackendIn(t, path, e)
	pol := config.Retention{MaxAgeSeconds: ptr(86400.0)}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var procs []*exec.Cmd
	for id := 0; id < writers; id++ {
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(path, id, perWriter, 0, 0))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
	}
	done := make(chan error, len(procs))
	for _, p := range procs {
		go func(p *exec.Cmd) { done <- p.Wait() }(p)
	}
	ctx := context.Background()
	compactions, running := 0, len(procs)
	for running > 0 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("writer: %v", err)
			}
			running--
			continue
		default:
		}
		if err := compactOnce(ctx, b, pol); err != nil {
			t.Fatalf("compaction %d: %v", compactions+1, err)
		}
		compactions++
	}
	if err := compactOnce(ctx, b, pol); err != nil {
		t.Fatalf("final compaction: %v", err)
	}
	c := takeCensus(t, path)
	missing, dups := c.missingAppended(writers, perWriter)
	if len(missing) > 0 || dups > 0 {
		t.Errorf("after %d compactions: %d appended records missing (first: %v), %d duplicated", compactions, len(missing), first(missing, 5), dups)
		q, _ := filepath.Glob(filepath.Join(e.QuarantineDir, "*"))
		for _, f := range q {
			data, _ := os.ReadFile(f)
			t.Logf("quarantine %s:\n%s", f, data)
		}
	}
	for i := 0; i < 2000; i++ {
		want := i % 2 // odd ones are inside retention
		if got := c.seeded[i]; got != want {
			t.Errorf("seeded record %d: present %d times, want %d", i, got, want)
			break
		}
	}
	if c.other != 0 {
		t.Errorf("%d unexpected lines in the store", c.other)
	}
	t.Logf("%d compactions while %d writers appended %d records", compactions, writers, writers*perWriter)
}

func compactOnce(ctx context.Context, b backends.Backend, pol config.Retention) error {
	if err := b.Recover(ctx); err != nil {
		return err
	}
	p, err := b.Plan(ctx, backends.Policy{Retention: pol, Now: time.Now()})
	if err != nil {
		return err
	}
	defer p.Close()
	_, err = b.Apply(ctx, p)
	return err
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
