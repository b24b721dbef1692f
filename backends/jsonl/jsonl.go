package jsonl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

const (
	// bufSize is the read and write buffer of each pass.
	bufSize = 1 << 20
	// maxLine is the longest line classified in memory. Longer lines are
	// quarantined by streaming them; Papyra never writes one (an actor
	// event of 16 MiB would be a bug of its own).
	maxLine = 16 << 20
)

// Backend compacts one JSON-lines store.
type Backend struct {
	path string
	env  backends.Env
	log  *slog.Logger
}

var _ backends.Backend = (*Backend)(nil)

// New returns a backend for target t (kind jsonl).
func New(t config.Target, env backends.Env) (backends.Backend, error) {
	if !filepath.IsAbs(t.Path) {
		return nil, fmt.Errorf("target %s: path %q is not absolute", t.Name, t.Path)
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{path: t.Path, env: env, log: env.Logger}, nil
}

// LockKey is the real path of target t's store: two targets (or a
// symlink and its target) naming one file share one lock.
func LockKey(t config.Target) (string, error) {
	return fsutil.Resolve(t.Path)
}

// Close implements backends.Backend.
func (b *Backend) Close() error { return nil }

// open opens the real store file for reading and checks it is a regular
// file. A missing file is ErrNothingToDo.
func (b *Backend) open() (*os.File, string, error) {
	real, err := fsutil.Resolve(b.path)
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(real)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, real, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
		}
		return nil, real, fmt.Errorf("open store: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, real, fmt.Errorf("stat %s: %w", real, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, real, fmt.Errorf("store %s is not a regular file (%s)", real, fi.Mode())
	}
	return f, real, nil
}

// checkCtx returns ctx's error wrapped for the store.
func (b *Backend) checkCtx(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compact %s: %w", b.path, err)
	}
	return nil
}
