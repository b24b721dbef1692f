package jsonl_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/jsonl"
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

func newBackend(t *testing.T, path string) backends.Backend {
	t.Helper()
	return newBackendIn(t, path, env(t.TempDir()))
}

func newBackendIn(t testing.TB, path string, e backends.Env) backends.Backend {
	t.Helper()
	b, err := jsonl.New(config.Target{Name: "t", Kind: config.KindJSONL, Path: path}, e)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func TestBackend_Suite(t *testing.T) {
	var path string
	backendtest.Run(t, backendtest.Harness{
		New: func(t *testing.T) backends.Backend {
			path = filepath.Join(t.TempDir(), "events.ndjson")
			return newBackend(t, path)
		},
		Write: func(t *testing.T, recs []backendtest.Record) {
			for _, r := range recs {
				if err := testutil.AppendPapyra(path, []byte(r.JSON()+"\n")); err != nil {
					t.Fatal(err)
				}
			}
		},
		Read: func(t *testing.T) []int {
			return backendtest.Numbers(t, testutil.ReadLines(t, path))
		},
		LockKey: func(*testing.T) (string, error) {
			return jsonl.LockKey(config.Target{Name: "t", Kind: config.KindJSONL, Path: path})
		},
		Raw: func(t *testing.T) string {
			return testutil.RawDir(t, filepath.Dir(path), filepath.Base(path))
		},
		// A run killed before its rename: a temp file holding a copy of the
		// survivors, and the store's second name, with no record.
		Leftover: func(t *testing.T) {
			dir, base := filepath.Dir(path), filepath.Base(path)
			tmp := filepath.Join(dir, fsutil.SideName(base, fsutil.RandomToken(), "tmp"))
			if err := os.WriteFile(tmp, []byte(testutil.ReadLines(t, path)[0]+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(path, filepath.Join(dir, fsutil.SideName(base, fsutil.RandomToken(), "old"))); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// compact plans and applies pol on the store at path.
func compact(t *testing.T, b backends.Backend, pol config.Retention) (backends.Stats, error) {
	t.Helper()
	ctx := context.Background()
	if err := b.Recover(ctx); err != nil {
		return backends.Stats{}, err
	}
	p, err := b.Plan(ctx, backends.Policy{Retention: pol, Now: backendtest.Now})
	if err != nil {
		return backends.Stats{}, err
	}
	defer p.Close()
	return b.Apply(ctx, p)
}

func ptr[T any](v T) *T { return &v }

func lines(s ...string) string { return strings.Join(s, "\n") + "\n" }
