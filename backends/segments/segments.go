package segments

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

const (
	// bufSize is the read and write buffer of each pass.
	bufSize = 1 << 20
	// maxLine is the longest line classified in memory; longer ones are
	// quarantined by streaming them (as in the jsonl backend).
	maxLine = 16 << 20
	// unreadBudget is how many bytes of segments wholly beyond the
	// retention cut are still read (for exact counts and to quarantine
	// their corrupt lines) before the older ones are dropped unread.
	unreadBudget = 4 << 20
	// snapshotTries bounds the attempts to see a consistent set of
	// segments while the writer rotates.
	snapshotTries = 200
)

// Backend compacts one Papyra RotatingFilePersistence store.
type Backend struct {
	path     string // the active segment, as configured
	maxBytes int64
	maxFiles int64
	env      backends.Env
	log      *slog.Logger
}

var _ backends.Backend = (*Backend)(nil)

// New returns a backend for target t (kind rotating). max_bytes and
// max_files must be the writer's own RotatingFilePersistence settings:
// max_files decides which slot keeps the writer from rotating (see the
// package doc).
func New(t config.Target, env backends.Env) (backends.Backend, error) {
	if !filepath.IsAbs(t.Path) {
		return nil, fmt.Errorf("target %s: path %q is not absolute", t.Name, t.Path)
	}
	if t.MaxBytes == nil || *t.MaxBytes <= 0 || t.MaxFiles == nil || *t.MaxFiles <= 0 {
		return nil, fmt.Errorf("target %s: max_bytes and max_files must be set and > 0", t.Name)
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	return &Backend{path: filepath.Clean(t.Path), maxBytes: *t.MaxBytes, maxFiles: *t.MaxFiles, env: env, log: env.Logger}, nil
}

// LockKey is the real directory of target t's store plus its base name:
// Papyra renames the active file, so the key must not depend on which
// inode it names.
//
// Unlike jsonl's one rename, the store is not replaced in one step: each
// segment is replaced atomically, but a reader that lists the segments
// while a run drops and rewrites several may see some done and some not
// (never a record twice, never a kept record missing from disk).
func LockKey(t config.Target) (string, error) {
	path := filepath.Clean(t.Path)
	dir, err := realDir(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// Close implements backends.Backend.
func (b *Backend) Close() error { return nil }

// realDir resolves symlinks in the store's directory. The active file's
// own name is never resolved: Papyra renames the name itself when it
// rotates, so a symlinked active file is refused (see open).
func (b *Backend) realDir() (string, error) { return realDir(b.path) }

func realDir(path string) (string, error) {
	dir := filepath.Dir(path)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return dir, fmt.Errorf("resolve %s: %w", dir, err)
	}
	return real, nil
}

// store names the files of one store in its real directory.
type store struct {
	dir  string
	base string
}

// name is the file name of segment index i: the active file for 0,
// base.i otherwise (Papyra's path.with_name(f"{name}.{i}")).
func (s store) name(i int) string {
	if i == 0 {
		return s.base
	}
	return s.base + "." + strconv.Itoa(i)
}

func (s store) path(i int) string { return filepath.Join(s.dir, s.name(i)) }

func (s store) side(name string) string { return filepath.Join(s.dir, name) }

// index parses a segment file name: 0 for the active file, i for base.i
// with i a positive decimal without leading zeros (what Papyra writes).
func (s store) index(name string) (int, bool) {
	if name == s.base {
		return 0, true
	}
	rest, ok := strings.CutPrefix(name, s.base+".")
	if !ok || rest == "" || rest[0] == '0' || len(rest) > 9 {
		return 0, false
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] < '0' || rest[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil
}

// fileID is an inode: what a name pointed at when we looked.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

func idOf(st *unix.Stat_t) fileID { return fileID{Dev: uint64(st.Dev), Ino: st.Ino} }

// listing is what the store's directory holds.
type listing struct {
	// ids maps each segment index present to its inode.
	ids map[int]fileID
	// papyraTmp are Papyra's own leftovers (path.compact.tmp,
	// *.recovered.tmp): reported, never deleted.
	papyraTmp []string
	// orphans are other files named <base>* that Papyra's scan reports.
	orphans []string
}

// indexes returns the segment indexes oldest first: highest suffix first,
// the active file (0) last.
func (l listing) indexes() []int {
	out := make([]int, 0, len(l.ids))
	for i := range l.ids {
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool {
		if out[a] == 0 || out[b] == 0 {
			return out[b] == 0 && out[a] != 0
		}
		return out[a] > out[b]
	})
	return out
}

// find returns the index that currently names id.
func (l listing) find(id fileID) (int, bool) {
	for i, v := range l.ids {
		if v == id {
			return i, true
		}
	}
	return 0, false
}

func (l listing) same(o listing) bool {
	if len(l.ids) != len(o.ids) {
		return false
	}
	for i, v := range l.ids {
		if o.ids[i] != v {
			return false
		}
	}
	return true
}

// list reads the directory. Segment names that are not regular files
// (a symlink, a directory) are an error: Papyra renames names, so acting
// through a link would move the link, not the data.
func (s store) list() (listing, error) {
	l := listing{ids: map[int]fileID{}}
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return l, fmt.Errorf("list %s: %w", s.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, s.base) {
			continue
		}
		i, ok := s.index(name)
		if !ok {
			if strings.HasSuffix(name, ".compact.tmp") || strings.HasSuffix(name, ".recovered.tmp") {
				l.papyraTmp = append(l.papyraTmp, name)
			} else {
				l.orphans = append(l.orphans, name)
			}
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(s.side(name), &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // renamed away since ReadDir: the caller compares two listings
			}
			return l, fmt.Errorf("stat %s: %w", s.side(name), err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return l, fmt.Errorf("%w: segment %s is not a regular file (Papyra's rotation renames names, so a link or directory there cannot be compacted)",
				backends.ErrUnsafe, s.side(name))
		}
		l.ids[i] = idOf(&st)
	}
	return l, nil
}

// settle waits until the segment names stop moving for d: a rotation the
// writer started before our anchor existed finishes within its
// open-to-write gap. It returns the stable listing.
func (s store) settle(ctx context.Context, d time.Duration) (listing, error) {
	const poll = 2 * time.Millisecond
	d = max(d, 5*time.Millisecond)
	give := time.Now().Add(20*d + 5*time.Second)
	prev, err := s.list()
	if err != nil {
		return prev, err
	}
	stableSince := time.Now()
	for time.Since(stableSince) < d {
		if time.Now().After(give) {
			return prev, fmt.Errorf("%s: %w (segments kept moving while the writer was held)", s.path(0), backends.ErrChanged)
		}
		if err := ctx.Err(); err != nil {
			return prev, fmt.Errorf("compact %s: %w", s.path(0), err)
		}
		time.Sleep(min(poll, d))
		cur, err := s.list()
		if err != nil {
			return cur, err
		}
		if !cur.same(prev) {
			stableSince = time.Now()
		}
		prev = cur
	}
	return prev, nil
}
