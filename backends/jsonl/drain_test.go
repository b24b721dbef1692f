package jsonl_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_DrainCarriesTheGracePeriod: Papyra opens the store, then
// writes. A record whose open came before the rename and whose write
// comes during the grace period after it lands on the old inode, which
// the store's name no longer reaches: only the drain carries it over. The
// test holds such a descriptor, waits for the rename (and so past the
// last copy of the tail), writes one record 300 ms later, and checks that
// it is in the store exactly once and counted as appended.
func TestBackend_DrainCarriesTheGracePeriod(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	write(t, path, lines(rec(1, fresh-10*86400), rec(2, fresh)), 0o644)
	e := env(filepath.Join(dir, "agent"))
	e.GracePeriod = 1500 * time.Millisecond
	b := newBackendIn(t, path, e)
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	held, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	late := rec(3, fresh)
	wrote := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		for {
			var cur unix.Stat_t
			if unix.Stat(path, &cur) == nil && cur.Ino != st.Ino {
				break
			}
			select {
			case <-stop:
				wrote <- nil
				return
			case <-time.After(200 * time.Microsecond):
			}
		}
		time.Sleep(300 * time.Millisecond)
		// Then it closes, as Papyra does after each record.
		_, err := held.WriteString(late + "\n")
		wrote <- errors.Join(err, held.Close())
	}()
	stats, err := compact(t, b, config.Retention{MaxAgeSeconds: ptr(86400.0)})
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if want := lines(rec(2, fresh), rec(3, fresh)); got != want {
		t.Errorf("store after the compaction:\n%s\nwant:\n%s", got, want)
	}
	if n := strings.Count(got, late); n != 1 {
		t.Errorf("the record written on the old inode during the grace period is in the store %d times, want 1", n)
	}
	if stats.Appended < int64(len(late)+1) {
		t.Errorf("stats.Appended = %d, want at least the %d bytes the drain carried", stats.Appended, len(late)+1)
	}
}

// TestBackend_DrainWaitsForAWriterPastTheGracePeriod: a Papyra writer
// that opened the store just before the rename can be descheduled
// between its open and its write for longer than the grace period. The
// test holds such a descriptor and writes through it only once the grace
// period is over (the run logs that the old inode is still open for
// writing) — or once the run has ended, when nothing waited for it — and
// closes it: the record must be in the store exactly once.
func TestBackend_DrainWaitsForAWriterPastTheGracePeriod(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	write(t, path, lines(rec(1, fresh-10*86400), rec(2, fresh)), 0o644)
	e := env(filepath.Join(dir, "agent"))
	e.GracePeriod = 50 * time.Millisecond
	var waiting <-chan struct{}
	e.Logger, waiting = testutil.LogSignal("still open for writing")
	b := newBackendIn(t, path, e)
	held, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	late := rec(3, fresh)
	done := make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		select {
		case <-waiting:
		case <-done:
		}
		_, err := held.WriteString(late + "\n")
		wrote <- errors.Join(err, held.Close())
	}()
	_, err = compact(t, b, config.Retention{MaxAgeSeconds: ptr(86400.0)})
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if n := strings.Count(got, late); n != 1 {
		t.Errorf("the record written on the old inode after the grace period is in the store %d times, want 1:\n%s", n, got)
	}
	testutil.AssertNoSideFiles(t, dir)
}

// TestBackend_CancelledWhileAWriterHoldsTheOldInode: a run whose context
// ends while a writer still holds the old inode must not drop it: the run
// fails, the old inode keeps its second name and the recovery record, and
// the next run's Recover (once the writer has written and closed it)
// carries the record over exactly once.
func TestBackend_CancelledWhileAWriterHoldsTheOldInode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	write(t, path, lines(rec(1, fresh-10*86400), rec(2, fresh)), 0o644)
	e := env(filepath.Join(dir, "agent"))
	e.GracePeriod = 20 * time.Millisecond
	var waiting <-chan struct{}
	e.Logger, waiting = testutil.LogSignal("still open for writing")
	b := newBackendIn(t, path, e)
	held, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting
		cancel()
	}()
	if err := b.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(86400.0)}, Now: backendtest.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Apply(ctx, p)
	p.Close()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, livefile.ErrWritersRemain) {
		t.Fatalf("Apply cancelled while a writer holds the old inode: %v, want context.Canceled and ErrWritersRemain", err)
	}
	if ents, _ := os.ReadDir(e.StateDir); len(ents) == 0 {
		t.Fatal("the recovery record is gone: the next run could not finish the drain")
	}
	late := rec(3, fresh)
	if _, err := held.WriteString(late + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := read(t, path)
	if want := lines(rec(2, fresh), rec(3, fresh)); got != want {
		t.Errorf("store after the next Recover:\n%s\nwant:\n%s", got, want)
	}
	testutil.AssertNoSideFiles(t, dir)
}
