package livefile_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// childEnv marks the copy of the test binary that runs without CAP_LEASE.
const childEnv = "PAPYRA_LIVEFILE_NO_CAP_LEASE"

// warnings collects the warnings a run logs.
type warnings struct{ buf bytes.Buffer }

func (w *warnings) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&w.buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (w *warnings) lines() []string {
	return strings.FieldsFunc(w.buf.String(), func(r rune) bool { return r == '\n' })
}

// TestAwaitWritersWithoutLeases: where the kernel refuses the lease
// (EACCES: another user's file and no CAP_LEASE; EINVAL: a file system
// without leases), AwaitWriters cannot tell whether a writer still holds
// the file: it drains once more and returns, and the run says so: one
// warning for the whole run, naming the remedy, and one note per file
// naming it, the reason and the grace period relied on (one per inode,
// whatever name it is checked under). Without
// CAP_LEASE, the run's own files still get leases (the proof holds).
func TestAwaitWritersWithoutLeases(t *testing.T) {
	t.Run("NoCapLease", func(t *testing.T) {
		if os.Getenv(childEnv) == "" {
			runWithoutCapLease(t)
			return
		}
		dir := t.TempDir()
		var w warnings
		check := livefile.NewWriterCheck(w.logger(), 2*time.Second)
		var names []string
		for i := range 2 {
			p := filepath.Join(dir, fmt.Sprintf("store-%d.jsonl", i))
			if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			// Papyra's user owns the store; the run is not that user.
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// A writer holds it past the grace period: unprovable here.
			h, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			drains := 0
			if err := livefile.AwaitWriters(context.Background(), f, time.Second, check, func() error { drains++; return nil }); err != nil {
				t.Fatalf("AwaitWriters without leases on %s: %v", p, err)
			}
			if drains != 1 {
				t.Errorf("%s drained %d times without a lease, want 1", p, drains)
			}
			names = append(names, p)
		}
		checkUnchecked(t, check, &w, names, "CAP_LEASE")

		// The run's own file: a lease needs no CAP_LEASE, and the writer
		// is seen.
		_, f := openOld(t)
		h, err := os.OpenFile(f.Name(), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		own := livefile.NewWriterCheck(w.logger(), 2*time.Second)
		err = livefile.AwaitWriters(context.Background(), f, 100*time.Millisecond, own, func() error { return nil })
		if !errors.Is(err, livefile.ErrWritersRemain) {
			t.Errorf("AwaitWriters on the run's own file held by a writer: %v, want %v", err, livefile.ErrWritersRemain)
		}
		if n := own.Notes(); len(n) != 0 {
			t.Errorf("notes for a file checked under a lease: %q", n)
		}
	})
	t.Run("NoLeasesOnTheFileSystem", func(t *testing.T) {
		// procfs has regular files and no leases (EINVAL); not a global
		// switch like fs.leases-enable, which other tests would feel.
		var w warnings
		check := livefile.NewWriterCheck(w.logger(), 2*time.Second)
		names := []string{"/proc/self/stat", "/proc/version"}
		for _, p := range names {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			drains := 0
			if err := livefile.AwaitWriters(context.Background(), f, time.Second, check, func() error { drains++; return nil }); err != nil {
				t.Fatalf("AwaitWriters on %s: %v", p, err)
			}
			if drains != 1 {
				t.Errorf("%s drained %d times without a lease, want 1", p, drains)
			}
		}
		// The same inode again, under another descriptor (a side name):
		// no second note, no second warning.
		again, err := os.Open(names[1])
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		if err := livefile.AwaitWriters(context.Background(), again, time.Second, check, func() error { return nil }); err != nil {
			t.Fatalf("AwaitWriters on %s again: %v", names[1], err)
		}
		checkUnchecked(t, check, &w, names, "file system has no leases")
	})
}

func checkUnchecked(t *testing.T, check *livefile.WriterCheck, w *warnings, names []string, reason string) {
	t.Helper()
	notes := check.Notes()
	if len(notes) != len(names) {
		t.Fatalf("notes %q, want one for each of %q", notes, names)
	}
	for i, n := range notes {
		for _, want := range []string{"could not check for late writers of " + names[i] + ":", reason, "relied on grace_period 2s"} {
			if !strings.Contains(n, want) {
				t.Errorf("note %q does not say %q", n, want)
			}
		}
	}
	warns := w.lines()
	if len(warns) != 1 {
		t.Fatalf("%d warnings for one run, want 1:\n%s", len(warns), w.buf.String())
	}
	for _, want := range []string{"level=WARN", names[0], reason, "CAP_LEASE", "grace_period 2s"} {
		if !strings.Contains(warns[0], want) {
			t.Errorf("the warning does not say %q: %s", want, warns[0])
		}
	}
}

// runWithoutCapLease runs the calling subtest again in a copy of the test
// binary that has every capability but CAP_LEASE (setpriv, util-linux),
// as a run started by hand or by a unit without it would.
func runWithoutCapLease(t *testing.T) {
	t.Helper()
	out := testutil.RerunWithoutCapLease(t, childEnv)
	if !capLeaseGone(t, out) {
		t.Fatalf("the child still had CAP_LEASE:\n%s", out)
	}
}

// capLeaseGone reads the child's report of its own bounding set.
func capLeaseGone(t *testing.T, out []byte) bool {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "CapBnd-lease:"); ok {
			return strings.TrimSpace(v) == "absent"
		}
	}
	return false
}

// TestMain lets the child say whether CAP_LEASE is in its bounding set.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		state := "absent"
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, unix.CAP_LEASE, 0, 0, 0); err != nil || r == 1 {
			state = "present"
		}
		fmt.Println("CapBnd-lease:", state)
	}
	os.Exit(m.Run())
}

// lateWriter starts sh as a Papyra writer would be: it opens path for
// appending (blocking while a lease is being broken), says so, writes each
// line after a pause and closes the file. A writer process, not a
// goroutine: the lease is the kernel's view of other processes.
func lateWriter(t *testing.T, path string, lines ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	script := `exec 3>>"$1" || exit 1; echo open; shift; for l in "$@"; do sleep 0.1; printf '%s\n' "$l" >&3 || exit 1; done; exec 3>&-; echo closed`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh", path}, lines...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewReader(out)
}

// drainer is a backend's drain of the old inode into its replacement.
type drainer struct {
	old, dst *os.File
	p        livefile.Progress
	drains   int
}

func newDrainer(t *testing.T, old *os.File) *drainer {
	t.Helper()
	dst, err := os.OpenFile(filepath.Join(t.TempDir(), "new"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dst.Close() })
	return &drainer{old: old, dst: dst}
}

func (d *drainer) once() error {
	d.drains++
	_, err := d.p.Append(d.old, d.dst, fsutil.NewSpace(), func() error { return nil }, nil)
	return err
}

// check says that the replacement holds each line of want exactly once,
// in order, and that nothing is left on the old inode past the drain.
func (d *drainer) check(t *testing.T, want []string) {
	t.Helper()
	got := testutil.ReadLines(t, d.dst.Name())
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the replacement holds\n%q\nwant each record once, in order:\n%q", got, want)
	}
	if size := livefile.Size(d.old); size != d.p.Offset {
		t.Errorf("the old inode has %d bytes, %d drained: a late record was let go undrained", size, d.p.Offset)
	}
}

// TestAwaitWritersLateWriterProcess: a writer process that opened the
// store before the swap and holds it past the grace period gets every
// record it writes into the replacement, once, in order.
func TestAwaitWritersLateWriterProcess(t *testing.T) {
	p, f := openOld(t)
	late := []string{`{"late": 1}`, `{"late": 2}`, `{"late": 3}`}
	cmd, out := lateWriter(t, p, late...)
	if l, err := out.ReadString('\n'); err != nil || l != "open\n" {
		t.Fatalf("the writer did not open %s: %q %v", p, l, err)
	}
	d := newDrainer(t, f)
	if err := livefile.AwaitWriters(context.Background(), f, time.Hour, livefile.NewWriterCheck(quiet, time.Second), d.once); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the writer: %v", err)
	}
	d.check(t, append([]string{"{}"}, late...))
}

// TestAwaitWritersLeaseBroken: a writer that opens the old inode while the
// run holds the lease (during the drain under it) breaks the lease; the
// wait must go on until that writer has closed, and its records be
// drained exactly once, in order, after the ones before.
func TestAwaitWritersLeaseBroken(t *testing.T) {
	p, f := openOld(t)
	d := newDrainer(t, f)
	late := []string{`{"late": 1}`, `{"late": 2}`}
	var cmd *exec.Cmd
	var out *bufio.Reader
	once := func() error {
		if err := d.once(); err != nil || cmd != nil {
			return err
		}
		// First drain, under the lease: a writer opens the inode now.
		cmd, out = lateWriter(t, p, late...)
		deadline := time.Now().Add(time.Minute) // a failure deadline only
		for {
			typ, err := unix.FcntlInt(f.Fd(), unix.F_GETLEASE, 0)
			if err != nil {
				return err
			}
			if typ != unix.F_RDLCK {
				return nil // being broken: the writer's open waits for us
			}
			if time.Now().After(deadline) {
				return errors.New("the writer did not open the file within a minute")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := livefile.AwaitWriters(context.Background(), f, time.Hour, livefile.NewWriterCheck(quiet, time.Second), once); err != nil {
		t.Fatal(err)
	}
	if cmd == nil {
		t.Fatal("AwaitWriters never drained")
	}
	rest, _ := out.ReadString(0)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the writer: %v", err)
	}
	if rest != "open\nclosed\n" {
		t.Errorf("the writer said %q", rest)
	}
	if d.drains < 3 {
		t.Errorf("%d drains: the wait did not go on after the lease was broken", d.drains)
	}
	d.check(t, append([]string{"{}"}, late...))
}
