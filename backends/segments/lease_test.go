package segments_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// noCapLeaseEnv marks the copy of the test binary that runs without
// CAP_LEASE.
const noCapLeaseEnv = "PAPYRA_SEGMENTS_NO_CAP_LEASE"

// TestBackend_UncheckedLateWritersAreReported: a rotating store owned by
// Papyra's user, compacted by a run that lacks CAP_LEASE (a manual run,
// or a unit edited without it): the run cannot prove that no writer still
// holds the replaced active file, so it compacts and says so: one
// warning, and a note in its Stats naming the active file, the missing
// capability and the grace period relied on. With CAP_LEASE (as the
// shipped units run) the same run has no such note. Both ways of
// rewriting the active file.
func TestBackend_UncheckedLateWritersAreReported(t *testing.T) {
	for _, tc := range []struct {
		name     string
		layout   layout
		capLease bool
	}{
		{"SelfRotatedWithCapLease", layout{2: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}, true},
		{"SelfRotatedWithoutCapLease", layout{2: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}, false},
		{"InPlaceWithCapLease", layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}, true},
		{"InPlaceWithoutCapLease", layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 {
				testutil.SkipOrFail(t, "the test gives the store to another user: needs root")
			}
			if !tc.capLease && os.Getenv(noCapLeaseEnv) == "" {
				testutil.RerunWithoutCapLease(t, noCapLeaseEnv)
				return
			}
			active := lay(t, tc.layout)
			dir := filepath.Dir(active)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if err := os.Chown(filepath.Join(dir, e.Name()), 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			e := env(t.TempDir())
			e.GracePeriod = 50 * time.Millisecond
			var logged bytes.Buffer
			e.Logger = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))
			stats, err := compact(t, newBackendIn(t, active, 1<<20, 4, e), age)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(readStore(t, active), "\n") + "\n"; strings.Contains(got, rec(2, old)) || !strings.Contains(got, rec(3, fresh)) {
				t.Errorf("store after the compaction:\n%s", got)
			}
			backendtest.CheckLateWriterNotes(t, stats.Notes, logged.String(), tc.capLease, dir+"/", "50ms")
		})
	}
}
