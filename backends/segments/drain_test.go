package segments_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_DrainCarriesTheGracePeriod: Papyra opens the active file,
// then writes. A record whose open came before the compactor replaced the
// active file, and whose write comes during the grace period after, lands
// on the old inode, which no Papyra name reaches any more: only the drain
// carries it into the store. The test holds such a descriptor, waits
// until the old active inode has left every segment name (the exchange
// happened, and so did the last copy of the tail), writes one record
// 700 ms later, and checks that it is in the store exactly once and
// counted as appended. Both ways of rewriting the active file: rotated
// to slot 1 by the compactor (slot 1 free) and replaced in place (slot 1
// holds a segment that stays).
func TestBackend_DrainCarriesTheGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout layout
	}{
		{"SelfRotated", layout{2: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}},
		{"InPlace", layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			active := lay(t, tc.layout)
			e := env(t.TempDir())
			// The write comes 700 ms after the exchange: later than the end
			// of the run if nothing drained, well inside the grace period.
			e.GracePeriod = 2 * time.Second
			b := newBackendIn(t, active, 1<<20, 4, e)
			var st unix.Stat_t
			if err := unix.Stat(active, &st); err != nil {
				t.Fatal(err)
			}
			held, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			late := rotLine(`{"w": 7, "n": 1}`, fresh)
			wrote := make(chan error, 1)
			stop := make(chan struct{})
			go func() {
				for onSegmentName(active, 4, st.Ino) {
					select {
					case <-stop:
						wrote <- nil
						return
					case <-time.After(200 * time.Microsecond):
					}
				}
				time.Sleep(700 * time.Millisecond)
				// Then it closes, as Papyra does after each record.
				_, err := held.WriteString(late)
				wrote <- errors.Join(err, held.Close())
			}()
			stats, err := compact(t, b, age)
			close(stop)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			if onSegmentName(active, 4, st.Ino) {
				t.Fatal("the active file was not replaced: the test did not reach the drain")
			}
			var all strings.Builder
			for _, l := range readStore(t, active) {
				all.WriteString(l + "\n")
			}
			if n := strings.Count(all.String(), late); n != 1 {
				t.Errorf("the record written on the old active inode during the grace period is in the store %d times, want 1:\n%s", n, all.String())
			}
			if stats.Appended < int64(len(late)) {
				t.Errorf("stats.Appended = %d, want at least the %d bytes the drain carried", stats.Appended, len(late))
			}
		})
	}
}

// onSegmentName reports whether inode ino is the active file or one of
// the rotated segments of the store.
func onSegmentName(active string, maxFiles int, ino uint64) bool {
	for i := 0; i < maxFiles; i++ {
		p := active
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == ino {
			return true
		}
	}
	return false
}

// TestBackend_DrainWaitsForAWriterPastTheGracePeriod: a Papyra writer
// that opened the active file just before the compactor replaced it can
// be descheduled between its open and its write for longer than the
// grace period. The test holds such a descriptor and writes through it
// only once the grace period is over (the run logs that the old inode is
// still open for writing) — or once the run has ended, when nothing
// waited for it — and closes it: the record must be in the store exactly
// once. Both ways of rewriting the active file.
func TestBackend_DrainWaitsForAWriterPastTheGracePeriod(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layout layout
	}{
		{"SelfRotated", layout{2: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}},
		{"InPlace", layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			active := lay(t, tc.layout)
			e := env(t.TempDir())
			e.GracePeriod = 50 * time.Millisecond
			var waiting <-chan struct{}
			e.Logger, waiting = testutil.LogSignal("still open for writing")
			b := newBackendIn(t, active, 1<<20, 4, e)
			held, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			late := rotLine(`{"w": 7, "n": 1}`, fresh)
			done := make(chan struct{})
			wrote := make(chan error, 1)
			go func() {
				select {
				case <-waiting:
				case <-done:
				}
				_, err := held.WriteString(late)
				wrote <- errors.Join(err, held.Close())
			}()
			_, err = compact(t, b, age)
			close(done)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			var all strings.Builder
			for _, l := range readStore(t, active) {
				all.WriteString(l + "\n")
			}
			if n := strings.Count(all.String(), late); n != 1 {
				t.Errorf("the record written on the old active inode after the grace period is in the store %d times, want 1:\n%s", n, all.String())
			}
			testutil.AssertNoSideFiles(t, filepath.Dir(active))
		})
	}
}

// TestBackend_CancelledWhileAWriterHoldsTheOldInode: a run whose context
// ends while a writer still holds the old active inode must not drop it:
// the run fails, the old inode keeps its side name and the run record,
// and the next Recover (once the writer has written and closed it)
// carries the record over exactly once.
func TestBackend_CancelledWhileAWriterHoldsTheOldInode(t *testing.T) {
	active := lay(t, layout{1: rec(1, fresh), 0: rec(2, old) + rec(3, fresh)})
	e := env(t.TempDir())
	e.GracePeriod = 20 * time.Millisecond
	var waiting <-chan struct{}
	e.Logger, waiting = testutil.LogSignal("still open for writing")
	b := newBackendIn(t, active, 1<<20, 4, e)
	held, err := os.OpenFile(active, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-waiting
		cancel()
	}()
	_, err = compactAt(ctx, b, age, backendtest.Now)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, livefile.ErrWritersRemain) {
		t.Fatalf("Apply cancelled while a writer holds the old active inode: %v, want context.Canceled and ErrWritersRemain", err)
	}
	if ents, _ := os.ReadDir(e.StateDir); len(ents) == 0 {
		t.Fatal("the run record is gone: the next run could not finish the drain")
	}
	late := rotLine(`{"w": 7, "n": 1}`, fresh)
	if _, err := held.WriteString(late); err != nil {
		t.Fatal(err)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	for _, l := range readStore(t, active) {
		all.WriteString(l + "\n")
	}
	if n := strings.Count(all.String(), late); n != 1 {
		t.Errorf("the record written on the old active inode is in the store %d times after Recover, want 1:\n%s", n, all.String())
	}
	for _, r := range []string{rec(1, fresh), rec(3, fresh)} {
		if n := strings.Count(all.String(), r); n != 1 {
			t.Errorf("kept record %q is in the store %d times, want 1", r, n)
		}
	}
	testutil.AssertNoSideFiles(t, filepath.Dir(active))
}
