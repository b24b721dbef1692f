// Package fsutil holds the small file-system primitives the file backends
// build their crash safety on: exclusive temp files, directory fsync, and
// keeping a file's mode and owner across a replace.
package fsutil

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Prefix starts the name of every file the agent creates next to a store.
// It never starts with a store's own name (Papyra's rotating scan reports
// any <store>* file as an anomaly) and it is hidden from a plain ls.
const Prefix = ".papyra-compact."

// RandomToken returns 16 lowercase hex characters.
func RandomToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on Linux
	return hex.EncodeToString(b[:])
}

// IsToken reports whether s has the shape RandomToken returns.
func IsToken(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SideName returns the name of a side file for the store named base:
// Prefix + base + "." + token + "." + suffix.
func SideName(base, token, suffix string) string {
	return Prefix + base + "." + token + "." + suffix
}

// ParseSideName is the inverse of SideName for one store: it reports the
// token and suffix of name when name is a side file of base. A store whose
// name extends base ("a.b" for "a") never matches, because the token must
// be exactly the 16 hex characters after base.
func ParseSideName(base, name string) (token, suffix string, ok bool) {
	p := Prefix + base + "."
	if len(name) <= len(p)+17 || name[:len(p)] != p {
		return "", "", false
	}
	rest := name[len(p):]
	token, suffix = rest[:16], rest[17:]
	if rest[16] != '.' || !IsToken(token) || suffix == "" {
		return "", "", false
	}
	return token, suffix, true
}

// CreateExclusive creates path with O_EXCL, opened for appending, so that a
// name clash fails instead of truncating someone else's file and every
// write lands at the end even when another process appends too.
func CreateExclusive(path string, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND|unix.O_CLOEXEC, perm)
}

// SetAppend sets or clears O_APPEND on f. CreateExclusive opens with
// O_APPEND, because once a replacement is the store Papyra appends to it
// too and every write of ours must land at its end; while it is still
// private it may be filled at explicit offsets, which copy_file_range
// refuses under O_APPEND.
func SetAppend(f *os.File, on bool) error {
	fd := int(f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fcntl %s: %w", f.Name(), err)
	}
	if on {
		fl |= unix.O_APPEND
	} else {
		fl &^= unix.O_APPEND
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl); err != nil {
		return fmt.Errorf("fcntl %s: %w", f.Name(), err)
	}
	return nil
}

// SyncDir fsyncs a directory so that a rename or unlink in it survives a
// power loss. rename(2) alone is atomic but not durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// ErrOwner means a replacement file could not be given the original's
// owner or mode; swapping it in would change who may read the store.
var ErrOwner = errors.New("cannot keep the store's owner and mode")

// MatchOwner gives f the permission bits, owner and group in st. Changing
// the owner needs CAP_CHOWN unless it already matches; the error then says
// so instead of swapping in a file owned by the agent's user.
func MatchOwner(f *os.File, st *unix.Stat_t) error {
	var cur unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &cur); err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if cur.Uid != st.Uid || cur.Gid != st.Gid {
		if err := unix.Fchown(int(f.Fd()), int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("%w: chown %s to %d:%d: %w (run as the store's owner or grant CAP_CHOWN)", ErrOwner, f.Name(), st.Uid, st.Gid, err)
		}
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err := unix.Fchmod(int(f.Fd()), st.Mode&0o7777); err != nil {
		return fmt.Errorf("%w: chmod %s to %o: %w", ErrOwner, f.Name(), st.Mode&0o7777, err)
	}
	return nil
}

// WriteFileAtomic replaces path with data: temp file in the same
// directory, fsync, rename, directory fsync. A reader sees the old or the
// new content, never a part. The temp file is named tempPattern(base): a
// kill before the rename leaves it, and SweepTemps(path), called by the
// next writer of path under its lock, removes it.
//
// It claims len(data) bytes on an empty budget first (see Space): a
// write that would eat into the free space Papyra's appends need fails
// with ENOSPC before anything is created.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return WriteFileAtomicSynced(path, data, perm, nil)
}

// WriteFileAtomicSynced is WriteFileAtomic that calls synced, when not
// nil, once the temp file is written and fsynced and before the rename:
// the place for a fail point where a kill leaves the temp file behind.
func WriteFileAtomicSynced(path string, data []byte, perm fs.FileMode, synced func() error) error {
	dir := filepath.Dir(path)
	c, err := (*Space)(nil).Claim("the file "+filepath.Base(path), dir, int64(len(data)))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer c.Release()
	return writeFileAtomic(path, data, perm, synced)
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode, synced func() error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, tempPattern(base))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if synced != nil {
		if err := synced(); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	ok = true
	return SyncDir(dir)
}

// tempPattern is the os.CreateTemp pattern of WriteFileAtomic's temp
// files for base: hidden, starting with Prefix (so that tests and people
// know it is ours), and specific to base.
func tempPattern(base string) string { return Prefix + base + ".*.tmp" }

// SweepTemps removes the temp files a killed WriteFileAtomic(path, …)
// left next to path, and returns how many it removed. Only path's own
// temp files match, so it is safe while other files of the directory are
// written; the caller must hold whatever serializes writers of path (the
// store's lock for a recovery record), or it could remove a temp file a
// live writer is about to rename.
func SweepTemps(path string) (int, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	matches, err := filepath.Glob(filepath.Join(dir, globEscape(Prefix+base)+".*.tmp"))
	if err != nil {
		return 0, fmt.Errorf("sweep %s: %w", dir, err)
	}
	n := 0
	var errs []error
	for _, m := range matches {
		rest := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), Prefix+base+"."), ".tmp")
		if !isDigits(rest) { // os.CreateTemp's random part
			continue
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove %s: %w", m, err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// globEscape escapes the glob metacharacters of s.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Resolve returns the real path of a store: symlinks in the path and in
// the file itself are followed, so the agent replaces the target of a
// symlinked store and leaves the link alone. A store that does not exist
// yet resolves through its directory.
func Resolve(path string) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if err == nil {
		return real, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("resolve %s: %w", path, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		return filepath.Clean(path), nil
	}
	return filepath.Join(dir, filepath.Base(path)), nil
}

// Scratch creates a scratch file in dir that has no name: O_TMPFILE where
// the file system supports it, else created and unlinked at once. A kill
// leaves nothing to clean up.
func Scratch(dir string) (*os.File, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create scratch directory %s: %w", dir, err)
	}
	f, err := os.OpenFile(dir, os.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err == nil {
		return f, nil
	}
	f, err = os.CreateTemp(dir, Prefix+"scratch-*")
	if err != nil {
		return nil, fmt.Errorf("create scratch file in %s: %w", dir, err)
	}
	_ = os.Remove(f.Name())
	return f, nil
}

// CheckSpace fails, before anything is written, when writing need more
// bytes in dir would leave less free space than the headroom (see Space;
// this is a claim on an empty budget, for the rewrite). The error wraps
// ENOSPC and says how much is needed and how much there is.
func CheckSpace(dir string, need int64) error {
	return (*Space)(nil).Check("the rewrite", dir, need)
}

// CreateUnnamed creates a file in dir that has no name yet (O_TMPFILE),
// for writing: a kill before LinkUnnamed leaves nothing behind. It fails
// where the file system does not support O_TMPFILE; callers then fall
// back to a named file.
func CreateUnnamed(dir string, perm fs.FileMode) (*os.File, error) {
	return os.OpenFile(dir, os.O_WRONLY|unix.O_TMPFILE|unix.O_CLOEXEC, perm)
}

// LinkUnnamed gives a file from CreateUnnamed its name, path, failing if
// path exists. It links through /proc/self/fd, which needs no privilege
// (AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH).
func LinkUnnamed(f *os.File, path string) error {
	err := unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(int(f.Fd())), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		return fmt.Errorf("link %s: %w", path, err)
	}
	return nil
}
