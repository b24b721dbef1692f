package testutil

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Tree lays out directories, files and symlinks owned by real users (by
// role: "alice", "bob"; any other role is root) under a root-owned
// directory nobody else may write.
type Tree struct {
	t     testing.TB
	Root  string
	users map[string]User
}

// NewTree returns an empty tree in a fresh directory.
func NewTree(t testing.TB, users map[string]User) *Tree {
	t.Helper()
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Tree{t: t, Root: root, users: users}
}

// P is the path of rel in the tree.
func (tr *Tree) P(rel string) string { return filepath.Join(tr.Root, rel) }

// Name is a role's user name ("root" for any role without a user).
func (tr *Tree) Name(role string) string {
	if u, ok := tr.users[role]; ok {
		return u.Name
	}
	return "root"
}

// Own gives rel (not what a link there points to) to role, with mode
// unless it is a symlink.
func (tr *Tree) Own(rel, role string, mode os.FileMode) {
	tr.t.Helper()
	if u, ok := tr.users[role]; ok {
		u.Own(tr.t, tr.P(rel), mode)
		return
	}
	if err := os.Lchown(tr.P(rel), 0, 0); err != nil {
		tr.t.Fatal(err)
	}
	if fi, err := os.Lstat(tr.P(rel)); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		if err := os.Chmod(tr.P(rel), mode); err != nil {
			tr.t.Fatal(err)
		}
	}
}

// Dir creates rel (and its parents) and gives it to role with mode.
func (tr *Tree) Dir(rel, role string, mode os.FileMode) {
	tr.t.Helper()
	if err := os.MkdirAll(tr.P(rel), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	tr.Own(rel, role, mode)
}

// File writes content to rel and gives it to role with mode 0600.
func (tr *Tree) File(rel, role, content string) {
	tr.t.Helper()
	if err := os.WriteFile(tr.P(rel), []byte(content), 0o600); err != nil {
		tr.t.Fatal(err)
	}
	tr.Own(rel, role, 0o600)
}

// Link puts a symlink to target at rel, owned by role.
func (tr *Tree) Link(rel, target, role string) {
	tr.t.Helper()
	if err := os.Symlink(target, tr.P(rel)); err != nil {
		tr.t.Fatal(err)
	}
	tr.Own(rel, role, 0)
}

// Snapshot lists every name under dir with its type, mode, owner, inode,
// size, modification time and content hash: two equal snapshots mean
// nothing there was written, renamed, created or removed.
func Snapshot(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		content := ""
		if st.Mode&unix.S_IFMT == unix.S_IFREG {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = fmt.Sprintf("sha256=%x", sha256.Sum256(data))
		}
		fmt.Fprintf(&b, "%s %o uid=%d ino=%d size=%d mtime=%d %s\n", p, st.Mode, st.Uid, st.Ino, st.Size, st.Mtim.Nano(), content)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
