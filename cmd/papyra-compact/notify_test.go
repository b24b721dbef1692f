package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestRun_Notify runs one pass as papyra-compact.service (Type=notify)
// would, with our socket as the service manager.
func TestRun_Notify(t *testing.T) {
	dir := t.TempDir()
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), filepath.Join(dir, "orders.jsonl"))
	cfg := filepath.Join(dir, "compact.yaml")
	if err := os.WriteFile(cfg, []byte(daemonConfig(dir, "orders")), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", sock.Path)
	t.Setenv("WATCHDOG_USEC", "")

	code, stdout, stderr := cli(t, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit code %d:\n%s\n%s", code, stdout, stderr)
	}
	var got []string
	for {
		m, ok := sock.Poll(200 * time.Millisecond)
		if !ok {
			break
		}
		got = append(got, m)
	}
	// READY=1 first (the configuration is loaded), STOPPING=1 last, the
	// final status just before it; progress may come between.
	if len(got) < 3 || got[0] != "READY=1" || got[len(got)-1] != "STOPPING=1" ||
		got[len(got)-2] != "STATUS=done: 1 targets, 0 failed" {
		t.Errorf("got %q, want READY=1, …, STATUS=done: 1 targets, 0 failed, STOPPING=1", got)
	}
	for _, m := range got[1 : len(got)-2] {
		if !strings.HasPrefix(m, "STATUS=orders: ") && !strings.HasPrefix(m, "EXTEND_TIMEOUT_USEC=120000000") {
			t.Errorf("got %q between READY and the end, want progress or an extension", m)
		}
	}
}
