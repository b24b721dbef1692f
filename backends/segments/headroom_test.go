package segments_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_Headroom: a rotating store whose rotated segments are full
// of unreadable lines, on a small file system, with the quarantine on the
// same file system or on another small one: the run fails before it
// writes anything, with ENOSPC naming the quarantine directory; Papyra's
// appends to the active file never fail and the free space never goes
// below the headroom; every unreadable line is still in the store exactly
// once, nothing is quarantined, no side file remains. When everything
// fits, every unreadable line is quarantined exactly once.
func TestBackend_Headroom(t *testing.T) {
	tests := []struct {
		name    string
		fs      func(t *testing.T) (store, quarantine string)
		corrupt int // bytes of unreadable lines in each of two rotated segments
		fail    bool
	}{
		{"QuarantineOnTheStoresFileSystem", func(t *testing.T) (string, string) {
			d := testutil.Tmpfs(t, "24m")
			return d, filepath.Join(d, "quarantine")
		}, 6 << 20, true},
		{"QuarantineOnAnotherSmallFileSystem", func(t *testing.T) (string, string) {
			return t.TempDir(), testutil.Tmpfs(t, "3m")
		}, 1 << 20, true},
		{"EverythingFits", func(t *testing.T) (string, string) {
			d := testutil.Tmpfs(t, "24m")
			return d, filepath.Join(d, "quarantine")
		}, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storeDir, qDir := tt.fs(t)
			active := filepath.Join(storeDir, "store.log")
			now := float64(backendtest.Now.Unix())
			var corrupt []string
			for seg := 2; seg >= 1; seg-- {
				var b strings.Builder
				b.WriteString(rec(seg*1000, now-3600)) // expired: the segment is rewritten
				for i := 0; b.Len() < tt.corrupt; i++ {
					line := fmt.Sprintf("not json %d/%07d %s", seg, i, strings.Repeat("q", 80))
					corrupt = append(corrupt, line)
					b.WriteString(line + "\n")
				}
				b.WriteString(rec(seg*1000+1, now-10))
				if err := os.WriteFile(fmt.Sprintf("%s.%d", active, seg), []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(active, []byte(rec(1, now-10)), 0o644); err != nil {
				t.Fatal(err)
			}
			e := env(t.TempDir())
			e.QuarantineDir = qDir
			be := newBackendIn(t, active, 1<<40, 8, e)
			var fst unix.Statfs_t
			if err := unix.Statfs(storeDir, &fst); err != nil {
				t.Fatal(err)
			}
			headroom := min(int64(fst.Blocks)*fst.Bsize/100, fsutil.Headroom)
			qFS := qDir
			if _, err := os.Stat(qFS); err != nil {
				qFS = storeDir
			}
			qFree := testutil.FreeBytes(t, qFS)

			// Papyra appends to the active file meanwhile, less than the
			// headroom in all; the free space is sampled.
			var (
				wg              sync.WaitGroup
				stop            = make(chan struct{})
				written         atomic.Int64
				appended        []string
				appendErr       error
				minFree, minQFS atomic.Int64
			)
			minFree.Store(1 << 62)
			minQFS.Store(1 << 62)
			wg.Add(2)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					line := rec(100000+k, now)
					if written.Load()+int64(len(line)) > headroom/2 {
						return
					}
					if err := testutil.AppendPapyra(active, []byte(line)); err != nil {
						appendErr = err
						return
					}
					written.Add(int64(len(line)))
					appended = append(appended, strings.TrimSuffix(line, "\n"))
					time.Sleep(200 * time.Microsecond)
				}
			}()
			go func() {
				defer wg.Done()
				var st unix.Statfs_t
				for {
					select {
					case <-stop:
						return
					default:
					}
					for _, m := range []struct {
						dir string
						min *atomic.Int64
					}{{storeDir, &minFree}, {qFS, &minQFS}} {
						if unix.Statfs(m.dir, &st) == nil {
							if f := int64(st.Bavail) * st.Bsize; f < m.min.Load() {
								m.min.Store(f)
							}
						}
					}
				}
			}()
			ctx := context.Background()
			pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr[float64](600)}, Now: backendtest.Now}
			p, err := be.Plan(ctx, pol)
			var st backends.Stats
			if err == nil {
				st, err = be.Apply(ctx, p)
				p.Close()
			}
			close(stop)
			wg.Wait()
			t.Log(err)
			if appendErr != nil {
				t.Errorf("a Papyra append failed during the run: %v", appendErr)
			}
			if low := minFree.Load(); low < headroom-written.Load()-8192 {
				t.Errorf("free space went down to %d bytes during the run; the headroom is %d", low, headroom)
			}
			var all []string
			for _, c := range contents(t, active) {
				all = append(all, strings.Split(strings.TrimSuffix(c, "\n"), "\n")...)
			}
			inStore := map[string]int{}
			for _, l := range all {
				inStore[l]++
			}
			inQ := map[string]int{}
			if st.QuarantineFile != "" {
				for _, raw := range quarantinedRaw(t, st.QuarantineFile) {
					inQ[string(raw)]++
				}
			}
			if tt.fail {
				if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), qDir) || !strings.Contains(err.Error(), "the quarantine file needs") {
					t.Fatalf("run: got %v, want ENOSPC naming %s and the quarantine file", err, qDir)
				}
				if low := minQFS.Load(); low < qFree-written.Load()-8192 {
					t.Errorf("the free space of %s went from %d down to %d bytes: the run wrote before it failed", qFS, qFree, low)
				}
				if ents, _ := os.ReadDir(qDir); len(ents) != 0 {
					t.Errorf("a failed run left %d quarantine files", len(ents))
				}
			} else if err != nil {
				t.Fatalf("run: %v", err)
			}
			for _, c := range corrupt {
				want := [2]int{1, 0}
				if !tt.fail {
					want = [2]int{0, 1}
				}
				if got := [2]int{inStore[c], inQ[c]}; got != want {
					t.Fatalf("unreadable line %.30q: in the store and quarantine %v times, want %v", c, got, want)
				}
			}
			for _, a := range appended {
				if inStore[a] != 1 {
					t.Fatalf("Papyra's record %.60q is %d times in the store, want 1", a, inStore[a])
				}
			}
			testutil.AssertNoSideFiles(t, storeDir)
		})
	}
}
