package fsutil

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoRenameat2 means the filesystem (or kernel) cannot exchange two
// names atomically or rename without replacing: renameat2(2) with
// RENAME_EXCHANGE or RENAME_NOREPLACE returned EINVAL or ENOSYS. Callers
// that rely on these for safety refuse to act rather than fall back to a
// check-then-rename race.
var ErrNoRenameat2 = errors.New("filesystem does not support renameat2 RENAME_EXCHANGE/RENAME_NOREPLACE")

// Exchange atomically swaps the names a and b, which must both exist and
// be in the same filesystem. Nothing is unlinked: whatever inode either
// name held before is held by the other name afterwards, so an exchange
// can never destroy a file someone else put at one of the names in the
// meantime (unlike rename(2), which silently replaces the target).
func Exchange(a, b string) error {
	return renameat2(a, b, unix.RENAME_EXCHANGE)
}

// RenameNoReplace renames oldpath to newpath, failing with EEXIST instead
// of replacing newpath when it exists.
func RenameNoReplace(oldpath, newpath string) error {
	return renameat2(oldpath, newpath, unix.RENAME_NOREPLACE)
}

func renameat2(a, b string, flags uint) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, flags)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("rename %s to %s: %w: %w", a, b, ErrNoRenameat2, err)
	}
	return &renameError{a: a, b: b, err: err}
}

// renameError keeps the errno reachable with errors.Is (EEXIST, ENOENT).
type renameError struct {
	a, b string
	err  error
}

func (e *renameError) Error() string { return fmt.Sprintf("rename %s to %s: %v", e.a, e.b, e.err) }
func (e *renameError) Unwrap() error { return e.err }
