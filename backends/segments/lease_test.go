package segments_test

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
				reexecWithoutCapLease(t)
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
			var notes []string
			for _, n := range stats.Notes {
				if strings.Contains(n, "late writers") {
					notes = append(notes, n)
				}
			}
			warns := strings.Count(logged.String(), "level=WARN")
			if tc.capLease {
				if len(notes) != 0 || warns != 0 {
					t.Errorf("with CAP_LEASE: notes %q, log:\n%s", notes, logged.String())
				}
				return
			}
			if len(notes) != 1 {
				t.Fatalf("notes %q, want one about the unchecked late writers", stats.Notes)
			}
			for _, want := range []string{"could not check for late writers of " + dir + "/", "CAP_LEASE", "relied on grace_period 50ms"} {
				if !strings.Contains(notes[0], want) {
					t.Errorf("note %q does not say %q", notes[0], want)
				}
			}
			if warns != 1 || !strings.Contains(logged.String(), "could not check for late writers") {
				t.Errorf("want one warning about the unchecked late writers, got:\n%s", logged.String())
			}
		})
	}
}

// reexecWithoutCapLease runs the calling subtest again in a copy of the
// test binary that has every capability but CAP_LEASE (setpriv,
// util-linux).
func reexecWithoutCapLease(t *testing.T) {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		testutil.SkipOrFail(t, "setpriv (util-linux) not found: %v", err)
	}
	run := "^" + strings.ReplaceAll(t.Name(), "/", "$/^") + "$"
	cmd := exec.Command(setpriv, "--inh-caps=-lease", "--bounding-set=-lease", "--",
		os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), noCapLeaseEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("without CAP_LEASE (%v):\n%s", err, out)
	}
}
