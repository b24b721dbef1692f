package segments_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

func TestBackend_Errors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string // returns the active path
		ret     config.Retention
		wantIs  error
		wantSub string
	}{
		{"MissingDirectory", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope", "store.log") },
			config.Retention{}, backends.ErrNothingToDo, ""},
		{"NoSegments", func(t *testing.T) string { return filepath.Join(t.TempDir(), "store.log") },
			config.Retention{}, backends.ErrNothingToDo, ""},
		{"SymlinkedActiveFile", func(t *testing.T) string {
			active := lay(t, layout{1: rec(1, fresh)})
			target := filepath.Join(t.TempDir(), "elsewhere.log")
			if err := os.WriteFile(target, []byte(rec(2, fresh)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, active); err != nil {
				t.Fatal(err)
			}
			return active
		}, config.Retention{}, backends.ErrUnsafe, "not a regular file"},
		{"MonotonicClock", func(t *testing.T) string {
			return lay(t, layout{1: rec(1, 9253.27), 0: rec(2, 9254.5)})
		}, age, backends.ErrUnsafe, "time_fn=time.time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			active := tt.setup(t)
			var before layout
			if _, err := os.Stat(filepath.Dir(active)); err == nil {
				before = contents(t, active)
			}
			_, err := compact(t, newBackend(t, active, 1<<20, 5), tt.ret)
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("compact: got %v, want an error wrapping %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Errorf("error %q does not mention %q", err, tt.wantSub)
			}
			if before != nil {
				after := contents(t, active)
				for i, c := range before {
					if after[i] != c {
						t.Errorf("segment %d changed after a refused run", i)
					}
				}
			}
		})
	}
}

// TestBackend_KeepsModeAndOwner: a rewritten segment, and the empty file
// that becomes the active file when the compactor rotates it, get the
// original's mode, owner and group.
func TestBackend_KeepsModeAndOwner(t *testing.T) {
	active := lay(t, layout{2: rec(1, old) + rec(2, fresh), 1: rec(3, fresh), 0: rec(4, old) + rec(5, fresh)})
	var want [3]unix.Stat_t
	for i, p := range []string{active, active + ".1", active + ".2"} {
		if err := os.Chmod(p, 0o640); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Chown(p, 4321, 4322); err != nil {
				t.Fatal(err)
			}
		}
		if err := unix.Stat(p, &want[i]); err != nil {
			t.Fatal(err)
		}
	}
	// Slot 1 holds a surviving segment: the active file is replaced in
	// place; store.log.2 is rewritten.
	if _, err := compact(t, newBackend(t, active, 1<<20, 5), age); err != nil {
		t.Fatal(err)
	}
	for i, p := range []string{active, active + ".1", active + ".2"} {
		var got unix.Stat_t
		if err := unix.Stat(p, &got); err != nil {
			t.Fatal(err)
		}
		if got.Mode != want[i].Mode || got.Uid != want[i].Uid || got.Gid != want[i].Gid {
			t.Errorf("%s: got mode %o owner %d:%d, want %o %d:%d", p, got.Mode, got.Uid, got.Gid, want[i].Mode, want[i].Uid, want[i].Gid)
		}
	}
	// Now the compactor rotates the active file itself.
	if err := os.WriteFile(active, []byte(rec(6, old)+rec(7, fresh)), 0o640); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{active + ".1", active + ".2"} {
		if err := os.WriteFile(p, []byte(rec(8, old)), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := compact(t, newBackend(t, active, 1<<20, 5), age); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{active, active + ".1"} {
		var got unix.Stat_t
		if err := unix.Stat(p, &got); err != nil {
			t.Fatal(err)
		}
		if got.Mode != want[0].Mode || got.Uid != want[0].Uid || got.Gid != want[0].Gid {
			t.Errorf("%s after the compactor's rotation: got mode %o owner %d:%d, want %o %d:%d", p, got.Mode, got.Uid, got.Gid, want[0].Mode, want[0].Uid, want[0].Gid)
		}
	}
}

// TestBackend_Recover_Strays: side files of the store that no run record
// explains are removed when empty and reported, never deleted, otherwise.
func TestBackend_Recover_Strays(t *testing.T) {
	active := lay(t, layout{0: rec(1, fresh)})
	dir := filepath.Dir(active)
	empty := filepath.Join(dir, ".papyra-compact.store.log.0123456789abcdef.anchor")
	full := filepath.Join(dir, ".papyra-compact.store.log.fedcba9876543210.swap.1")
	other := filepath.Join(dir, ".papyra-compact.store.log2.0123456789abcdef.swap.1")
	for p, c := range map[string]string{empty: "", full: rec(2, fresh), other: "x"} {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := newBackend(t, active, 1<<20, 5)
	err := b.Recover(t.Context())
	if !errors.Is(err, backends.ErrUnsafe) || !strings.Contains(err.Error(), full) {
		t.Errorf("Recover: got %v, want ErrUnsafe naming %s", err, full)
	}
	if _, err := os.Stat(empty); !os.IsNotExist(err) {
		t.Errorf("empty stray: got %v, want it removed", err)
	}
	for _, p := range []string{full, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v, want it left alone", p, err)
		}
	}
}

// TestBackend_DropsUnreadBeyondCut: with a count limit, segments wholly
// beyond the cut are dropped without reading them once more than the
// budget lies there; the run reads a fraction of the store.
func TestBackend_DropsUnreadBeyondCut(t *testing.T) {
	const segSize = 1 << 20
	l := layout{}
	var n int
	for i := 24; i >= 0; i-- {
		var b strings.Builder
		for b.Len() < segSize-300 {
			b.WriteString(rec(n, fresh))
			n++
		}
		l[i] = b.String()
	}
	active := lay(t, l)
	st, err := compact(t, newBackend(t, active, segSize, 25), config.Retention{MaxRecords: ptr[int64](10)})
	if err != nil {
		t.Fatal(err)
	}
	got := storeIs(t, active)
	if len(got) != 10 || got[0] != n-10 || got[9] != n-1 {
		t.Errorf("kept records %v, want %d…%d", got, n-10, n-1)
	}
	if st.Segments.BytesRead*4 > st.BytesBefore {
		t.Errorf("read %d of %d bytes, want a fraction", st.Segments.BytesRead, st.BytesBefore)
	}
	if st.Segments.Dropped != 24 || !strings.Contains(strings.Join(st.Notes, ";"), "without being read") {
		t.Errorf("got %d segments dropped, notes %q; want 24 and a note about unread segments", st.Segments.Dropped, st.Notes)
	}
	t.Logf("read %d of %d bytes", st.Segments.BytesRead, st.BytesBefore)
}

// storeIs returns the "i" of every record of the store in read order.
func storeIs(t *testing.T, active string) []int {
	t.Helper()
	var out []int
	for _, l := range readStore(t, active) {
		i := strings.Index(l, `"i": `)
		j := strings.IndexByte(l[i:], '}')
		var v int
		for _, c := range l[i+5 : i+j] {
			v = v*10 + int(c-'0')
		}
		out = append(out, v)
	}
	return out
}
