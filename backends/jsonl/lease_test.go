package jsonl_test

import (
	"bytes"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
				reexecWithoutCapLease(t)
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
			for _, want := range []string{"could not check for late writers of " + path + ":", "CAP_LEASE", "relied on grace_period 50ms"} {
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
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "the test gives the store to another user: needs root")
	}
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
