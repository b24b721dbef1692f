package jsonl

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/safepath"
)

const (
	// bufSize is the read and write buffer of each pass.
	bufSize = 1 << 20
	// maxLine is the longest line classified (and quarantined) in memory;
	// longer lines are streamed (classify.Policy.MaxLine).
	maxLine = 16 << 20
)

// Backend compacts one JSON-lines store. It is built for one run: the
// store's path is resolved once, on first use, and every step of the run
// acts relative to the directory it resolved to.
type Backend struct {
	path  string
	owner string // the target's owner:, "" when unset
	env   backends.Env
	log   *slog.Logger
	store *safepath.Store // resolved once; see resolve
	// space is the run's free-space budget: every file the run writes
	// (scratch, temp copy, quarantine, recovery record, drained lines) is
	// claimed from it before it is written, so that together they leave
	// the headroom Papyra's appends need (fsutil.Space).
	space *fsutil.Space
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
	return &Backend{path: t.Path, owner: t.Owner, env: env, log: env.Logger, space: spaceOf(env)}, nil
}

// LockKey is the real path of target t's store, resolved as the
// backend resolves it (safepath): two targets (or a symlink and its
// target) naming one file share one lock, and a path refused by the
// ownership rules has no key, so the target fails before anything is
// locked or touched. A store whose directory does not exist yet keys on
// its configured path (there is nothing to do).
func LockKey(t config.Target) (string, error) {
	pol, err := safepath.PolicyFor(t.Owner)
	if err != nil {
		return "", fmt.Errorf("%s: %w", t.Path, err)
	}
	s, err := safepath.Resolve(t.Path, pol)
	if errors.Is(err, fs.ErrNotExist) {
		return filepath.Clean(t.Path), nil
	}
	if err != nil {
		return "", refusal(err)
	}
	defer s.Close()
	return s.Path, nil
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	if b.store == nil {
		return nil
	}
	err := b.store.Close()
	b.store = nil
	return err
}

// resolve resolves the store's path once for the backend's life (one
// run), under the ownership rules of safepath: the lock key, the recovery
// record and every file operation then refer to the same directory,
// whatever is renamed or linked on the path meanwhile. A refusal wraps
// backends.ErrUnsafe and safepath.ErrRefused; a missing directory wraps
// fs.ErrNotExist.
func (b *Backend) resolve() (*safepath.Store, error) {
	if b.store != nil {
		return b.store, nil
	}
	pol, err := safepath.PolicyFor(b.owner)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b.path, err)
	}
	s, err := safepath.Resolve(b.path, pol)
	if err != nil {
		return nil, refusal(err)
	}
	if k := b.env.LockKey; k != "" && k != s.Path {
		s.Close()
		return nil, fmt.Errorf("%s: %w (it resolves to %s now, but the run locked %s; the next run retries)", b.path, backends.ErrChanged, s.Path, k)
	}
	b.store = s
	return s, nil
}

// refusal marks a safepath refusal, and a store that is not a regular
// file, as backends.ErrUnsafe.
func refusal(err error) error {
	if (errors.Is(err, safepath.ErrRefused) || errors.Is(err, safepath.ErrNotRegular)) && !errors.Is(err, backends.ErrUnsafe) {
		return fmt.Errorf("%w: %w", backends.ErrUnsafe, err)
	}
	return err
}

// open opens the real store file for reading, relative to its resolved
// directory, without following a symlink there and without blocking, and
// checks it is a regular file with one link (livefile.CheckStore) that its
// directory's owner (or the target's owner) owns. A missing file is
// ErrNothingToDo.
func (b *Backend) open() (*os.File, string, error) {
	s, err := b.resolve()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, filepath.Clean(b.path), fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
	}
	if errors.Is(err, safepath.ErrNotRegular) {
		// A directory at the store's name: say so in words. The stat is
		// for the message only; nothing is opened through the path.
		var st unix.Stat_t
		if unix.Stat(b.path, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
			err = livefile.CheckStore(b.path, &st)
		}
	}
	if err != nil {
		return nil, "", err
	}
	f, st, err := s.Open()
	if errors.Is(err, safepath.ErrNotRegular) {
		// Say what it is, in words and with its full mode.
		err = livefile.CheckStore(s.Path, &st)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		// A socket cannot be opened at all (ENXIO): say what it is.
		if lst, lerr := s.Dir.Lstat(s.Name); lerr == nil && lst.Mode&unix.S_IFMT != unix.S_IFREG {
			err = livefile.CheckStore(s.Path, &lst)
		}
	} else if err == nil {
		if err = livefile.CheckStore(s.Path, &st); err != nil {
			f.Close()
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, s.Path, fmt.Errorf("%s: %w", b.path, backends.ErrNothingToDo)
		}
		return nil, s.Path, fmt.Errorf("open store: %w", refusal(err))
	}
	return f, s.Path, nil
}

// checkCtx returns ctx's error wrapped for the store.
func (b *Backend) checkCtx(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compact %s: %w", b.path, err)
	}
	return nil
}

// spaceOf is env's free-space budget, or a new one.
func spaceOf(env backends.Env) *fsutil.Space {
	if env.Space != nil {
		return env.Space
	}
	return fsutil.NewSpace()
}
