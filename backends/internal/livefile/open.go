package livefile

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
)

// ErrNotRegular means a store path names something other than a regular
// file: a FIFO, a socket, a device, a directory or a symbolic link.
var ErrNotRegular = errors.New("not a regular file")

// ErrHardLinked means a store has more than one name. After a swap the
// store's name points at the replacement, but every other name still
// points at the old inode: records Papyra appends through that name would
// go to a file nobody reads, and the agent would never see them.
var ErrHardLinked = errors.New("has more than one hard link")

// CheckStore refuses a store whose stat st is not a regular file with a
// single link; the error names the path and what it really is, with its
// full mode ("a directory (drwxr-xr-x)").
func CheckStore(path string, st *unix.Stat_t) error {
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: store %s is %w: it is %s", backends.ErrUnsafe, path, ErrNotRegular, Describe(st.Mode))
	}
	if st.Nlink > 1 {
		return fmt.Errorf("%w: store %s %w (%d names for inode %d): after a compaction the other names would still point at the old file, "+
			"so records Papyra appends through them would be lost to the store; remove the other links "+
			"(find / -xdev -samefile %s) or point Papyra and the target at one name", backends.ErrUnsafe, path, ErrHardLinked, st.Nlink, st.Ino, path)
	}
	return nil
}

// Describe names the file type of a stat mode in words, with the full
// mode string, permission bits included: "a named pipe (prw-r--r--)".
func Describe(mode uint32) string {
	m := fs.FileMode(mode & 0o777)
	if mode&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if mode&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if mode&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	var what string
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		what = "a regular file"
	case unix.S_IFDIR:
		what, m = "a directory", m|fs.ModeDir
	case unix.S_IFIFO:
		what, m = "a named pipe (FIFO)", m|fs.ModeNamedPipe
	case unix.S_IFSOCK:
		what, m = "a socket", m|fs.ModeSocket
	case unix.S_IFCHR:
		what, m = "a character device", m|fs.ModeDevice|fs.ModeCharDevice
	case unix.S_IFBLK:
		what, m = "a block device", m|fs.ModeDevice
	case unix.S_IFLNK:
		what, m = "a symbolic link", m|fs.ModeSymlink
	default:
		what, m = "a file of unknown type", m|fs.ModeIrregular
	}
	return what + " (" + m.String() + ")"
}
