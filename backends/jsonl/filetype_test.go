package jsonl_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
)

// hangLimit is how long a refusal may take before the test calls it a
// hang: the old code blocked in open(2) on a FIFO forever. It is not a
// speed bound; a refusal takes microseconds.
const hangLimit = 2 * time.Minute

// planOrHang plans on b in a goroutine and fails the test if Plan does not
// return within hangLimit.
func planOrHang(t *testing.T, b backends.Backend) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		p, err := b.Plan(context.Background(), backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](1)}, Now: backendtest.Now})
		if err == nil {
			p.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(hangLimit):
		t.Fatalf("Plan blocked for %v on a store that is not a regular file", hangLimit)
		return nil
	}
}

// TestBackend_NotARegularFile: a store path naming a FIFO, a socket, a
// device, a directory (directly or through a symlink) is refused at once,
// without blocking, with an error that names what it really is and its
// full mode, permission bits included.
func TestBackend_NotARegularFile(t *testing.T) {
	tests := []struct {
		name  string
		make  func(t *testing.T, path string) // creates the store path
		wants string                          // in the error
	}{
		{"FIFO", func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o640); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o640)
		}, "a named pipe (FIFO) (prw-r-----)"},
		{"FIFOWithWriterGone", func(t *testing.T, p string) {
			if err := unix.Mkfifo(p, 0o604); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o604)
		}, "(prw----r--)"},
		{"Socket", func(t *testing.T, p string) {
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			chmod(t, p, 0o750)
		}, "a socket (Srwxr-x---)"},
		{"Directory", func(t *testing.T, p string) {
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			chmod(t, p, 0o751)
		}, "a directory (drwxr-x--x)"},
		{"CharDeviceThroughSymlink", func(t *testing.T, p string) {
			if err := os.Symlink("/dev/null", p); err != nil {
				t.Fatal(err)
			}
		}, "a character device (Dcrw-rw-rw-)"},
		{"FIFOThroughSymlink", func(t *testing.T, p string) {
			fifo := p + ".fifo"
			if err := unix.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			chmod(t, fifo, 0o600)
			if err := os.Symlink(fifo, p); err != nil {
				t.Fatal(err)
			}
		}, "a named pipe (FIFO) (prw-------)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A short directory: a unix socket path has a 108-byte limit.
			dir, err := os.MkdirTemp("", "pc")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			path := filepath.Join(dir, "s.jsonl")
			tt.make(t, path)
			err = planOrHang(t, newBackend(t, path))
			if !errors.Is(err, backends.ErrUnsafe) {
				t.Fatalf("plan: got %v, want a refusal wrapping ErrUnsafe", err)
			}
			if !strings.Contains(err.Error(), tt.wants) || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("error %q does not say %q", err, tt.wants)
			}
		})
	}
}

// TestBackend_HardLinkedStore: a store with another name is refused, at
// planning and when a link appears between planning and the swap, with an
// error that says why; nothing changes. With the other name gone the same
// store compacts.
func TestBackend_HardLinkedStore(t *testing.T) {
	content := lines(rec(1, old), rec(2, fresh), rec(3, fresh))
	for _, when := range []string{"BeforePlan", "BeforeApply"} {
		t.Run(when, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s.jsonl")
			other := filepath.Join(dir, "other-name.jsonl")
			write(t, path, content, 0o644)
			b := newBackend(t, path)
			ctx := context.Background()
			pol := backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](2)}, Now: backendtest.Now}
			if when == "BeforePlan" {
				if err := os.Link(path, other); err != nil {
					t.Fatal(err)
				}
			}
			p, err := b.Plan(ctx, pol)
			if err == nil {
				defer p.Close()
				if err := os.Link(path, other); err != nil {
					t.Fatal(err)
				}
				_, err = b.Apply(ctx, p)
			}
			if !errors.Is(err, backends.ErrUnsafe) {
				t.Fatalf("got %v, want a refusal wrapping ErrUnsafe", err)
			}
			for _, want := range []string{"hard link", "2 names", "old file", "samefile"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if got := read(t, path); got != content {
				t.Errorf("a refused store changed: %q", got)
			}
			var st unix.Stat_t
			if err := unix.Stat(path, &st); err != nil || st.Nlink != 2 {
				t.Errorf("links after a refusal: %d, %v; want 2 (both names on one inode)", st.Nlink, err)
			}
			if err := os.Remove(other); err != nil {
				t.Fatal(err)
			}
			if _, err := compact(t, newBackend(t, path), pol.Retention); err != nil {
				t.Fatalf("compact with one name: %v", err)
			}
			if got, want := read(t, path), lines(rec(2, fresh), rec(3, fresh)); got != want {
				t.Errorf("store: got %q, want %q", got, want)
			}
		})
	}
}

func chmod(t *testing.T, p string, m os.FileMode) {
	t.Helper()
	if err := os.Chmod(p, m); err != nil {
		t.Fatal(err)
	}
}
