package segments_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/segments"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// env returns a backend environment under dir.
func env(dir string) backends.Env {
	return backends.Env{
		QuarantineDir: filepath.Join(dir, "quarantine"),
		StateDir:      filepath.Join(dir, "state"),
		ScratchDir:    filepath.Join(dir, "state", "scratch"),
		GracePeriod:   10 * time.Millisecond,
	}
}

func newBackend(t *testing.T, path string, maxBytes, maxFiles int64) backends.Backend {
	t.Helper()
	return newBackendIn(t, path, maxBytes, maxFiles, env(t.TempDir()))
}

func newBackendIn(t *testing.T, path string, maxBytes, maxFiles int64, e backends.Env) backends.Backend {
	t.Helper()
	b, err := segments.New(config.Target{Name: "t", Kind: config.KindRotating, Path: path, MaxBytes: &maxBytes, MaxFiles: &maxFiles}, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBackend_Suite(t *testing.T) {
	var w papyraWriter
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			w = papyraWriter{path: filepath.Join(t.TempDir(), "store.log"), maxBytes: 700, maxFiles: 10}
			return newBackend(t, w.path, w.maxBytes, w.maxFiles)
		},
		Write: func(t *testing.T, recs []backendtest.Record) {
			for _, r := range recs {
				if err := w.append(rotLine(`{"i": `+strconv.Itoa(r.I)+`}`, r.Timestamp)); err != nil {
					t.Fatal(err)
				}
			}
		},
		Read: func(t *testing.T) []int {
			return backendtest.Numbers(t, readStore(t, w.path))
		},
		LockKey: func(*testing.T) (string, error) {
			return segments.LockKey(config.Target{Name: "t", Kind: config.KindRotating, Path: w.path})
		},
		Raw: func(t *testing.T) string {
			return testutil.RawDir(t, filepath.Dir(w.path), filepath.Base(w.path))
		},
		// A run killed before it recorded anything: an anchor and a
		// replacement created, still empty, under side names.
		Leftover: func(t *testing.T) {
			dir, base := filepath.Dir(w.path), filepath.Base(w.path)
			token := fsutil.RandomToken()
			for _, suffix := range []string{"anchor", "swap.1"} {
				if err := os.WriteFile(filepath.Join(dir, fsutil.SideName(base, token, suffix)), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
}

// compact recovers, plans and applies pol on the store.
func compact(t *testing.T, b backends.Backend, pol config.Retention) (backends.Stats, error) {
	t.Helper()
	return compactAt(context.Background(), b, pol, backendtest.Now)
}

func compactAt(ctx context.Context, b backends.Backend, pol config.Retention, now time.Time) (backends.Stats, error) {
	if err := b.Recover(ctx); err != nil {
		return backends.Stats{}, err
	}
	p, err := b.Plan(ctx, backends.Policy{Retention: pol, Now: now})
	if err != nil {
		return backends.Stats{}, err
	}
	defer p.Close()
	return b.Apply(ctx, p)
}

func ptr[T any](v T) *T { return &v }

// segmentFiles returns the store's segment file names in Papyra's read
// order (highest suffix first, the active file last) and every other file
// of the directory.
func segmentFiles(t *testing.T, active string) (segs, others []string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Dir(active))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Base(active)
	idx := map[string]int{}
	for _, e := range ents {
		n := e.Name()
		if n == base {
			idx[n] = 0
			segs = append(segs, n)
			continue
		}
		if rest, ok := strings.CutPrefix(n, base+"."); ok {
			if i, err := strconv.Atoi(rest); err == nil && i > 0 && rest[0] != '0' {
				idx[n] = i
				segs = append(segs, n)
				continue
			}
		}
		others = append(others, n)
	}
	sort.Slice(segs, func(a, b int) bool {
		ia, ib := idx[segs[a]], idx[segs[b]]
		if ia == 0 || ib == 0 {
			return ib == 0 && ia != 0
		}
		return ia > ib
	})
	return segs, others
}

// readStoreBytes concatenates the segments in Papyra's read order.
func readStoreBytes(t *testing.T, active string) []byte {
	t.Helper()
	segs, _ := segmentFiles(t, active)
	var out []byte
	for _, s := range segs {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(active), s))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// readStore returns the store's lines in Papyra's read order.
func readStore(t *testing.T, active string) []string {
	t.Helper()
	s := strings.TrimSuffix(string(readStoreBytes(t, active)), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// assertPapyraNaming checks that the directory holds only the store's
// segments named as Papyra names them (suffixes 1 … maxFiles-1) and the
// allowed other files.
func assertPapyraNaming(t *testing.T, active string, maxFiles int, allowed ...string) {
	t.Helper()
	segs, others := segmentFiles(t, active)
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for _, o := range others {
		if !ok[o] {
			t.Errorf("unexpected file in the store's directory: %s", o)
		}
	}
	base := filepath.Base(active)
	for _, s := range segs {
		if s == base {
			continue
		}
		if i, _ := strconv.Atoi(strings.TrimPrefix(s, base+".")); i >= maxFiles {
			t.Errorf("segment %s is beyond max_files-1 = %d: Papyra would not read it", s, maxFiles-1)
		}
	}
}
