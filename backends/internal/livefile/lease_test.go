package livefile_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openOld lays a file and opens it read-only, as the backends hold a
// replaced store.
func openOld(t *testing.T) (string, *os.File) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "old")
	if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return p, f
}

// TestAwaitWriters covers who keeps a replaced file from being let go: a
// descriptor open for writing anywhere does, for as long as it is open
// and at most the bound (ErrWritersRemain), or until the context ends
// (its error too); a reader (a `tail -f`, the run's own descriptors) does
// not. Every outcome drains at least once more.
func TestAwaitWriters(t *testing.T) {
	for _, tc := range []struct {
		name      string
		hold      int // flags of another descriptor kept open; -1: none
		cancelled bool
		want      error
	}{
		{name: "NoOtherDescriptor", hold: -1},
		{name: "AReaderOnly", hold: os.O_RDONLY},
		{name: "AWriterForever", hold: os.O_WRONLY | os.O_APPEND, want: livefile.ErrWritersRemain},
		{name: "AReadWriterForever", hold: os.O_RDWR, want: livefile.ErrWritersRemain},
		{name: "AWriterAndACancelledRun", hold: os.O_WRONLY | os.O_APPEND, cancelled: true, want: context.Canceled},
		{name: "NoWriterAndACancelledRun", hold: -1, cancelled: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, f := openOld(t)
			if tc.hold >= 0 {
				h, err := os.OpenFile(p, tc.hold, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer h.Close()
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.cancelled {
				cancel()
			}
			drains := 0
			err := livefile.AwaitWriters(ctx, f, 200*time.Millisecond, livefile.NewWriterCheck(quiet, time.Second), func() error { drains++; return nil })
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("AwaitWriters: %v, want %v", err, tc.want)
			}
			if tc.want != nil && !errors.Is(err, livefile.ErrWritersRemain) {
				t.Errorf("AwaitWriters: %v does not say that a writer remains", err)
			}
			if drains == 0 {
				t.Error("AwaitWriters never drained")
			}
		})
	}
}

// TestAwaitWritersWaitsForTheClose: a writer that holds the file past the
// grace period and writes before it closes: the drain after the close
// (under the lease) must see its write.
func TestAwaitWritersWaitsForTheClose(t *testing.T) {
	p, f := openOld(t)
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var once1 sync.Once
	go func() {
		<-started
		time.Sleep(50 * time.Millisecond)
		_, _ = w.WriteString("{\"late\": 1}\n")
		_ = w.Close()
	}()
	var seen int64
	once := func() error {
		once1.Do(func() { close(started) })
		seen = livefile.Size(f)
		return nil
	}
	if err := livefile.AwaitWriters(context.Background(), f, time.Hour, livefile.NewWriterCheck(quiet, time.Second), once); err != nil {
		t.Fatal(err)
	}
	if want := int64(len("{}\n{\"late\": 1}\n")); seen != want {
		t.Errorf("the last drain saw %d bytes, want %d: it ran before the writer closed", seen, want)
	}
}
