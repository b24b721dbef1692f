package jsonl_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// attrsOf is what getfacl and getfattr say about path: its ACL and every
// extended attribute, in all namespaces.
func attrsOf(t *testing.T, path string) string {
	t.Helper()
	acl := run(t, "getfacl", "--absolute-names", path)
	xa := run(t, "getfattr", "--absolute-names", "-d", "-m", "-", path)
	return acl + xa
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		testutil.SkipOrFail(t, "%s not installed (make deps installs acl and attr)", name)
	}
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// appendAs appends line to path as user u, as Papyra running as u would.
func appendAs(u testutil.User, path, line string) error {
	c := exec.Command("sh", "-c", `printf '%s\n' "$1" >> "$2"`, "sh", line, path)
	c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID)}}
	out, err := c.CombinedOutput()
	if err != nil {
		return &exec.Error{Name: string(out), Err: err}
	}
	return nil
}

// TestBackend_KeepsACLsAndXattrs: a 0600 store that the Papyra user may
// append to only through a POSIX ACL entry, with attributes in the user,
// trusted and security namespaces, keeps all of them across a rewrite
// (getfacl and getfattr say the same before and after), and the ACL user
// can still append. An ACL the replacement would inherit from the
// directory's default ACL, which the store does not have, is not added.
func TestBackend_KeepsACLsAndXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "setting trusted.* attributes and switching users needs root")
	}
	papyra := testutil.NewUser(t)
	for _, tc := range []struct {
		name       string
		defaultACL bool
	}{{"OwnACL", false}, {"DirectoryDefaultACLNotInherited", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "pcacl")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			chmod(t, dir, 0o755)
			path := filepath.Join(dir, "s.jsonl")
			write(t, path, lines(rec(1, old), rec(2, fresh), rec(3, fresh)), 0o600)
			if tc.defaultACL {
				// Files created in dir from now on inherit an ACL; the store
				// has none of its own.
				run(t, "setfacl", "-d", "-m", "u:"+papyra.Name+":r", dir)
			} else {
				run(t, "setfacl", "-m", "u:"+papyra.Name+":rw", path)
			}
			run(t, "setfattr", "-n", "user.papyra", "-v", "orders", path)
			run(t, "setfattr", "-n", "trusted.papyra", "-v", "0x00ff01", path)
			run(t, "setfattr", "-n", "security.papyra", "-v", "label", path)
			before := attrsOf(t, path)
			var st1 unix.Stat_t
			if err := unix.Stat(path, &st1); err != nil {
				t.Fatal(err)
			}
			if _, err := compact(t, newBackend(t, path), config.Retention{MaxRecords: ptr[int64](2)}); err != nil {
				t.Fatalf("compact: %v", err)
			}
			var st2 unix.Stat_t
			if err := unix.Stat(path, &st2); err != nil {
				t.Fatal(err)
			}
			if st1.Ino == st2.Ino {
				t.Fatal("the store was not rewritten; the test proves nothing")
			}
			if after := attrsOf(t, path); after != before {
				t.Errorf("ACL and attributes changed across the swap:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			if st2.Mode != st1.Mode || st2.Uid != st1.Uid || st2.Gid != st1.Gid {
				t.Errorf("mode and owner: got %o %d:%d, want %o %d:%d", st2.Mode, st2.Uid, st2.Gid, st1.Mode, st1.Uid, st1.Gid)
			}
			err = appendAs(papyra, path, rec(4, fresh))
			if tc.defaultACL {
				if err == nil {
					t.Error("a user with no ACL entry on the store could append to the replacement")
				}
				return
			}
			if err != nil {
				t.Fatalf("the ACL user cannot append to the replacement: %v", err)
			}
			if got, want := read(t, path), lines(rec(2, fresh), rec(3, fresh), rec(4, fresh)); got != want {
				t.Errorf("store: got %q, want %q", got, want)
			}
		})
	}
}
