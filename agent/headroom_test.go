package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestRecorder_FullFileSystem: the state directory or the textfile's
// directory on a file system with less free space than the headroom
// (what Papyra's appends need, when a store shares it): recording fails
// with ENOSPC naming the directory, writes nothing there (the free space
// is what it was, no temp file), and the previous state file and textfile
// stay as they were.
func TestRecorder_FullFileSystem(t *testing.T) {
	for _, full := range []string{"state", "textfile"} {
		t.Run(full, func(t *testing.T) {
			small := testutil.Tmpfs(t, "1m")
			cfg := metricsConfig(t.TempDir())
			var dir string
			switch full {
			case "state":
				cfg.StateDir = filepath.Join(small, "state")
				dir = filepath.Join(cfg.StateDir, "targets")
			case "textfile":
				cfg.Metrics.Textfile = filepath.Join(small, "textfile", "papyra_compact.prom")
				dir = filepath.Dir(cfg.Metrics.Textfile)
			}
			rec := newRecorder(t, cfg)
			must(t, rec.Record(okResult("orders", config.KindJSONL, t0())))
			statePath := filepath.Join(cfg.StateDir, "targets", "orders.json")
			state, err := os.ReadFile(statePath)
			must(t, err)
			text, err := os.ReadFile(cfg.Metrics.Textfile)
			must(t, err)
			// Fill the small file system to a page below the headroom.
			headroom := min(int64(1<<20)/100, fsutil.Headroom) // 1% of the 1 MiB tmpfs
			must(t, os.WriteFile(filepath.Join(small, "filler"), make([]byte, testutil.FreeBytes(t, small)-headroom+4096), 0o600))
			before := testutil.FreeBytes(t, small)

			err = rec.Record(okResult("orders", config.KindJSONL, t0().Add(3600e9)))
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "for Papyra's appends") {
				t.Fatalf("record on a full file system: got %v, want ENOSPC naming %s and the headroom", err, dir)
			}
			if after := testutil.FreeBytes(t, small); after != before {
				t.Errorf("free space went from %d to %d bytes", before, after)
			}
			if got, _ := os.ReadFile(statePath); full == "state" && string(got) != string(state) {
				t.Errorf("the state file changed")
			}
			if got, _ := os.ReadFile(cfg.Metrics.Textfile); string(got) != string(text) {
				t.Errorf("the textfile changed")
			}
			testutil.AssertNoSideFiles(t, dir)
		})
	}
}
