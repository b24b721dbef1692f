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
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/safepath"
)

const (
	// bufSize is the read and write buffer of each pass.
	bufSize = 1 << 20
	// maxLine is the longest line classified (and copied) in memory;
	// longer ones are streamed (as in the jsonl backend).
	maxLine = 16 << 20
	// unreadBudget is how many bytes of segments wholly beyond the
	// retention cut are still read (for exact counts and to quarantine
	// their corrupt lines) before the older ones are dropped unread.
	unreadBudget = 4 << 20
	// snapshotTries bounds the attempts to see a consistent set of
	// segments while the writer rotates.
	snapshotTries = 200
)

// Backend compacts one Papyra RotatingFilePersistence store. It is built
// for one run: the store's directory is resolved once, on first use, and
// every step of the run acts relative to it.
type Backend struct {
	path     string // the active segment, as configured
	owner    string // the target's owner:, "" when unset
	maxBytes int64
	maxFiles int64
	env      backends.Env
	log      *slog.Logger
	dir      *safepath.Dir // resolved once; see resolveDir
	// space is the run's free-space budget: every file the run writes
	// (scratch, replacements, quarantine, run record, drained lines) is
	// claimed from it before it is written, so that together they leave
	// the headroom Papyra's appends need (fsutil.Space).
	space *fsutil.Space
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
	return &Backend{path: filepath.Clean(t.Path), owner: t.Owner, maxBytes: *t.MaxBytes, maxFiles: *t.MaxFiles, env: env, log: env.Logger, space: spaceOf(env)}, nil
}

// LockKey is the real directory of target t's store, resolved as the
// backend resolves it (safepath), plus its base name: Papyra renames the
// active file, so the key must not depend on which inode it names. A
// directory refused by the ownership rules has no key: the target fails
// before anything is locked or touched.
//
// Unlike jsonl's one rename, the store is not replaced in one step: each
// segment is replaced atomically, but a reader that lists the segments
// while a run drops and rewrites several may see some done and some not
// (never a record twice, never a kept record missing from disk).
func LockKey(t config.Target) (string, error) {
	path := filepath.Clean(t.Path)
	d, err := resolveDir(path, t.Owner)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	defer d.Close()
	return filepath.Join(d.Path(), filepath.Base(path)), nil
}

// Close implements backends.Backend.
func (b *Backend) Close() error {
	if b.dir == nil {
		return nil
	}
	err := b.dir.Close()
	b.dir = nil
	return err
}

// resolveDir resolves the directory of the store at path under the
// ownership rules of safepath (owner is the target's owner:, "" when
// unset) and holds it open. The active file's own name is never
// resolved: Papyra renames the name itself when it rotates, so a
// symlinked segment is refused (see list). A refusal wraps
// backends.ErrUnsafe and safepath.ErrRefused; a missing directory wraps
// fs.ErrNotExist.
func resolveDir(path, owner string) (*safepath.Dir, error) {
	pol, err := safepath.PolicyFor(owner)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d, err := safepath.ResolveDir(filepath.Dir(path), pol)
	if err != nil {
		if errors.Is(err, safepath.ErrRefused) {
			return nil, fmt.Errorf("%w: %w", backends.ErrUnsafe, err)
		}
		return nil, err
	}
	return d, nil
}

// openDir resolves the store's directory once for the backend's life
// (one run) and holds it open: the run record, every listing and every
// rename then refer to the same directory, whatever is renamed or linked
// on the path meanwhile.
func (b *Backend) openDir() (*safepath.Dir, error) {
	if b.dir != nil {
		return b.dir, nil
	}
	d, err := resolveDir(b.path, b.owner)
	if err != nil {
		return nil, err
	}
	if k, got := b.env.LockKey, filepath.Join(d.Path(), filepath.Base(b.path)); k != "" && k != got {
		d.Close()
		return nil, fmt.Errorf("%s: %w (it resolves to %s now, but the run locked %s; the next run retries)", b.path, backends.ErrChanged, got, k)
	}
	b.dir = d
	return d, nil
}

// openStore returns the store's files in its resolved directory.
func (b *Backend) openStore() (store, error) {
	d, err := b.openDir()
	if err != nil {
		return store{}, err
	}
	return store{d: d, dir: d.Path(), base: filepath.Base(b.path)}, nil
}

// store names the files of one store in its real directory. Every file
// operation goes through d, relative to the directory resolved once;
// dir is its real path, for messages and keys.
type store struct {
	d    *safepath.Dir
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

// exchange swaps names a and b of the store's directory atomically; a
// file system without renameat2 is refused (ErrUnsafe) rather than served
// with a check-then-rename race.
func (s store) exchange(a, b string) error {
	err := s.d.Exchange(a, b)
	if errors.Is(err, safepath.ErrNoRenameat2) {
		return fmt.Errorf("%w: %w", backends.ErrUnsafe, err)
	}
	return err
}

// openRegular opens name in the store's directory without following a
// link or blocking, and refuses what is not a regular file the owner rule
// allows.
func (s store) openRegular(name string, flag int, perm os.FileMode) (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := s.d.Open(name, flag|unix.O_NONBLOCK, perm)
	if err != nil {
		return nil, st, err
	}
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, st, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, st, fmt.Errorf("%w: %s is %w", backends.ErrUnsafe, f.Name(), safepath.ErrNotRegular)
	}
	if err := s.d.CheckFile(name, &st); err != nil {
		f.Close()
		return nil, st, fmt.Errorf("%w: %w", backends.ErrUnsafe, err)
	}
	return f, st, nil
}

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
	names, err := s.d.Names()
	if err != nil {
		return l, err
	}
	for _, name := range names {
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
		st, err := s.d.Lstat(name)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // renamed away since the listing: the caller compares two listings
			}
			return l, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return l, fmt.Errorf("%w: segment %s is not a regular file: it is %s (Papyra's rotation renames names, so a link, pipe, socket, device or directory there cannot be compacted)",
				backends.ErrUnsafe, s.side(name), livefile.Describe(st.Mode))
		}
		l.ids[i] = idOf(&st)
	}
	return l, nil
}

// checkSegment refuses a segment that is not a regular file (a name may
// have been replaced between the listing and the open) and an active file
// (index 0) with other hard links: after its replacement, records Papyra
// appends through another name would go to the old inode. A rotated
// segment with other links (a hard-link backup) is fine: nothing appends
// to it, the other name merely keeps the old data.
func checkSegment(path string, index int, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG || index == 0 {
		return livefile.CheckStore(path, st)
	}
	return nil
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

// spaceOf is env's free-space budget, or a new one.
func spaceOf(env backends.Env) *fsutil.Space {
	if env.Space != nil {
		return env.Space
	}
	return fsutil.NewSpace()
}
