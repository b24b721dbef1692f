package jsonl_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// noCapLeaseEnv marks the copy of the test binary that runs without
// CAP_LEASE.
const noCapLeaseEnv = "PAPYRA_JSONL_NO_CAP_LEASE"

// TestBackend_UncheckedLateWritersAreReported: a store owned by Papyra's
// user, compacted by a run that lacks CAP_LEASE (a manual run, or a unit
// edited without it): the run cannot prove that no writer still holds
// the replaced file, so it still compacts, and says so: one warning, and
// a note in its Stats naming the store, the missing capability and the
// grace period relied on. With CAP_LEASE (as the shipped units run) the
// same run has no such note.
func TestBackend_UncheckedLateWritersAreReported(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capLease bool
	}{
		{name: "WithCapLease", capLease: true},
		{name: "WithoutCapLease"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.capLease && os.Getenv(noCapLeaseEnv) == "" {
				testutil.RerunWithoutCapLease(t, noCapLeaseEnv)
				return
			}
			if os.Geteuid() != 0 {
				testutil.SkipOrFail(t, "the test gives the store to another user: needs root")
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "events.ndjson")
			write(t, path, lines(rec(1, fresh-10*86400), rec(2, fresh)), 0o644)
			if err := os.Chown(path, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			e := env(filepath.Join(dir, "agent"))
			e.GracePeriod = 50 * time.Millisecond
			var logged bytes.Buffer
			e.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
			stats, err := compact(t, newBackendIn(t, path, e), config.Retention{MaxAgeSeconds: ptr(86400.0)})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := read(t, path), lines(rec(2, fresh)); got != want {
				t.Errorf("store after the compaction:\n%s\nwant:\n%s", got, want)
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil || st.Uid != 65534 {
				t.Errorf("store owner %d (%v), want 65534", st.Uid, err)
			}
			backendtest.CheckLateWriterNotes(t, stats.Notes, logged.String(), tc.capLease, path+":", "50ms")
		})
	}
}
