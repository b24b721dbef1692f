package jsonl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/config"
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
		_, err := held.WriteString(late + "\n")
		wrote <- err
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
