package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoRenameat2 means the file system (or kernel) cannot exchange two
// names atomically or rename without replacing: renameat2(2) returned
// EINVAL or ENOSYS. Callers that rely on these for safety refuse to act
// rather than fall back to a check-then-rename race.
var ErrNoRenameat2 = errors.New("filesystem does not support renameat2 RENAME_EXCHANGE/RENAME_NOREPLACE")

// Dir is a directory resolved once and held by an O_PATH descriptor.
// Every method takes a single file name in it (no "/", never "." or
// ".."), and none follows a symlink at that name: what the name holds is
// judged, opened, renamed or unlinked, never what it points to. A Dir is
// safe for concurrent use; Close it when done.
type Dir struct {
	fd    int
	path  string
	st    unix.Stat_t
	pol   Policy
	links []Link
}

// Path is the directory's real path, for messages and keys.
func (d *Dir) Path() string { return d.path }

// Join is the real path of name in d, for messages and keys.
func (d *Dir) Join(name string) string {
	if d.path == "/" {
		return "/" + name
	}
	return d.path + "/" + name
}

// Fd is the O_PATH descriptor, for *at system calls of the caller's own.
// It stays valid until Close.
func (d *Dir) Fd() int { return d.fd }

// Stat is the directory's stat as resolved.
func (d *Dir) Stat() unix.Stat_t { return d.st }

// Links are the symlinks the resolution followed, outermost first.
func (d *Dir) Links() []Link { return append([]Link(nil), d.links...) }

// Close releases the descriptor. It is idempotent.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%q is not a file name: %w", name, unix.EINVAL)
	}
	return nil
}

func (d *Dir) pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: d.Join(name), Err: err}
}

// Open opens name in d with flag (os.O_* and unix.O_* flags) and perm for
// a file it creates. O_NOFOLLOW and O_CLOEXEC are always added: a symlink
// at name fails with ELOOP. The returned file's Name is its real path.
func (d *Dir) Open(name string, flag int, perm os.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, d.pathErr("open", name, err)
	}
	fd, err := unix.Openat(d.fd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return nil, d.pathErr("open", name, err)
	}
	return os.NewFile(uintptr(fd), d.Join(name)), nil
}

// CreateExclusive creates name with O_EXCL, opened for appending, so that
// a name clash fails instead of truncating someone else's file and every
// write lands at the end even when another process appends too.
func (d *Dir) CreateExclusive(name string, perm os.FileMode) (*os.File, error) {
	return d.Open(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, perm)
}

// Lstat stats name itself (a symlink is reported as one).
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(name); err != nil {
		return st, d.pathErr("stat", name, err)
	}
	if err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, d.pathErr("stat", name, err)
	}
	return st, nil
}

// Names lists the directory's entries (without "." and ".."), read
// through a descriptor of its own so that concurrent listings do not
// share an offset.
func (d *Dir) Names() ([]string, error) {
	f, err := d.reopen()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.path, err)
	}
	return names, nil
}

// reopen opens the directory itself for reading (getdents, fsync), which
// an O_PATH descriptor cannot do. It is the same inode: "." is looked up
// in the directory the descriptor holds.
func (d *Dir) reopen() (*os.File, error) {
	fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", d.path, err)
	}
	return os.NewFile(uintptr(fd), d.path), nil
}

// Sync fsyncs the directory so that a rename, link or unlink in it
// survives a power loss. rename(2) alone is atomic but not durable.
func (d *Dir) Sync() error {
	f, err := d.reopen()
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", d.path, err)
	}
	return nil
}

// Statfs reports the file system the directory is on.
func (d *Dir) Statfs() (unix.Statfs_t, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(d.fd, &st); err != nil {
		return st, fmt.Errorf("statfs %s: %w", d.path, err)
	}
	return st, nil
}

// Remove unlinks name (a file, or the link itself if it is a symlink).
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return d.pathErr("remove", name, err)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return d.pathErr("remove", name, err)
	}
	return nil
}

// Rename renames from to to in d, replacing to (rename(2)).
func (d *Dir) Rename(from, to string) error {
	return d.renameat2(from, to, 0)
}

// Exchange atomically swaps the names a and b, which must both exist.
// Nothing is unlinked: whatever inode either name held before is held by
// the other name afterwards, so an exchange can never destroy a file
// someone else put at one of the names in the meantime.
func (d *Dir) Exchange(a, b string) error {
	return d.renameat2(a, b, unix.RENAME_EXCHANGE)
}

// RenameNoReplace renames from to to, failing with EEXIST instead of
// replacing to when it exists.
func (d *Dir) RenameNoReplace(from, to string) error {
	return d.renameat2(from, to, unix.RENAME_NOREPLACE)
}

func (d *Dir) renameat2(a, b string, flags uint) error {
	if err := checkName(a); err != nil {
		return d.pathErr("rename", a, err)
	}
	if err := checkName(b); err != nil {
		return d.pathErr("rename", b, err)
	}
	var err error
	if flags == 0 {
		err = unix.Renameat(d.fd, a, d.fd, b)
	} else {
		err = unix.Renameat2(d.fd, a, d.fd, b, flags)
	}
	switch {
	case err == nil:
		return nil
	case flags != 0 && (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)):
		return fmt.Errorf("rename %s to %s: %w: %w", d.Join(a), d.Join(b), ErrNoRenameat2, err)
	}
	return &os.LinkError{Op: "rename", Old: d.Join(a), New: d.Join(b), Err: err}
}

// LinkFile gives the open file f a new name in d, whatever f's own name
// holds by now: linkat(2) through /proc/self/fd with AT_SYMLINK_FOLLOW
// (which needs no privilege), else AT_EMPTY_PATH (which needs
// CAP_DAC_READ_SEARCH). It never links by name.
func (d *Dir) LinkFile(f *os.File, name string) error {
	if err := checkName(name); err != nil {
		return d.pathErr("link", name, err)
	}
	fd := int(f.Fd())
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), d.fd, name, unix.AT_SYMLINK_FOLLOW)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		err = unix.Linkat(fd, "", d.fd, name, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: f.Name(), New: d.Join(name), Err: err}
	}
	return nil
}
