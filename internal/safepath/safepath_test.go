package safepath_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/safepath"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// world is a directory tree with two real users besides root.
type world struct {
	t          *testing.T
	root       string
	alice, bob testutil.User
}

// newWorld makes a fresh tree for users made once per top-level test
// (useradd is slow).
func newWorld(t *testing.T, alice, bob testutil.User) *world {
	t.Helper()
	w := &world{t: t, alice: alice, bob: bob}
	// The test's own directory must be traversable, and nobody but root
	// may write it.
	w.root = t.TempDir()
	if err := os.Chmod(w.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) p(rel string) string { return filepath.Join(w.root, rel) }

// who is a user of the world, or root (nil).
func (w *world) who(name string) *testutil.User {
	switch name {
	case "alice":
		return &w.alice
	case "bob":
		return &w.bob
	}
	return nil
}

func (w *world) own(path, owner string, mode os.FileMode) {
	w.t.Helper()
	if u := w.who(owner); u != nil {
		u.Own(w.t, path, mode)
		return
	}
	if err := os.Lchown(path, 0, 0); err != nil {
		w.t.Fatal(err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink == 0 {
		if err := os.Chmod(path, mode); err != nil {
			w.t.Fatal(err)
		}
	}
}

func (w *world) dir(rel, owner string, mode os.FileMode) {
	w.t.Helper()
	if err := os.MkdirAll(w.p(rel), 0o755); err != nil {
		w.t.Fatal(err)
	}
	w.own(w.p(rel), owner, mode)
}

func (w *world) file(rel, owner string, mode os.FileMode) {
	w.t.Helper()
	if err := os.WriteFile(w.p(rel), []byte("{\"n\":1}\n"), 0o600); err != nil {
		w.t.Fatal(err)
	}
	w.own(w.p(rel), owner, mode)
}

// link puts a symlink at rel owned by owner. A target starting with "@"
// is made absolute inside the world.
func (w *world) link(rel, target, owner string) {
	w.t.Helper()
	if strings.HasPrefix(target, "@") {
		target = w.p(target[1:])
	}
	if err := os.Symlink(target, w.p(rel)); err != nil {
		w.t.Fatal(err)
	}
	w.own(w.p(rel), owner, 0)
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		path  string
		owner string // the target's owner: field, "" for none
		// want is the real path (relative to the world) the store
		// resolves to; "" when the resolution or the open is refused.
		want string
		// refusal lists what the error must name ("alice", "bob" stand
		// for those users' names; others are world-relative paths).
		refusal []string
		wantIs  error
	}{
		{
			// The attack: the owner of a/ aims a/store at b/store.
			name: "FinalLinkToOtherUsersFile",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("a/store", "../b/store", "alice")
			},
			path: "a/store", refusal: []string{"a/store", "alice", "b/store", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "AbsoluteFinalLinkToOtherUsersFile",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("a/store", "@b/store", "alice")
			},
			path: "a/store", refusal: []string{"a/store", "alice", "b/store", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "LinkedParentDirectoryOfOtherUser",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("a/sub", "../b", "alice")
			},
			path: "a/sub/store", refusal: []string{"a/sub", "alice", "b", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "LinkedGrandparentDirectoryOfOtherUser",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b/data", "bob", 0o755)
				w.own(w.p("b"), "bob", 0o755)
				w.file("b/data/store", "bob", 0o600)
				w.link("a/sub", "@b", "alice")
			},
			path: "a/sub/data/store", refusal: []string{"a/sub", "alice", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "ChainThroughOtherUsersLink",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("b/l2", "store", "bob")
				w.link("a/store", "../b/l2", "alice")
			},
			path: "a/store", refusal: []string{"a/store", "alice", "b/store", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "DanglingLinkIntoOtherUsersDirectory",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.link("a/store", "../b/new", "alice")
			},
			path: "a/store", refusal: []string{"a/store", "alice", "b/new", "bob"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "LinkOwnerOwnsTarget",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("a/store", "../b/store", "bob")
			},
			path: "a/store", want: "b/store",
		},
		{
			name: "ChainOfOneOwner",
			setup: func(w *world) {
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("b/l2", "store", "bob")
				w.link("b/l1", "@b/l2", "bob")
			},
			path: "b/l1", want: "b/store",
		},
		{
			name: "RootOwnedLinkToOtherUsersFile",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("b", "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("a/store", "../b/store", "root")
			},
			path: "a/store", want: "b/store",
		},
		{
			name: "RootOwnedLinkedDirectory",
			setup: func(w *world) {
				w.dir("real/x", "bob", 0o755)
				w.file("real/x/store", "bob", 0o600)
				w.link("alias", "real/./x/..", "root")
			},
			path: "alias/x/store", want: "real/x/store",
		},
		{
			name: "LinkWithDotDotAfterIt",
			setup: func(w *world) {
				w.dir("b/in", "bob", 0o755)
				w.own(w.p("b"), "bob", 0o755)
				w.file("b/store", "bob", 0o600)
				w.link("b/up", "in", "bob")
			},
			path: "b/up/../store", want: "b/store",
		},
		{
			name: "LinkCycle",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.link("a/x", "y", "alice")
				w.link("a/y", "x", "alice")
			},
			path: "a/x", wantIs: unix.ELOOP,
		},
		{
			name:   "StoreIsDirectory",
			setup:  func(w *world) { w.dir("a/store", "alice", 0o755) },
			path:   "a/store",
			wantIs: safepath.ErrNotRegular,
		},
		{
			name: "StoreIsFIFO",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				if err := unix.Mkfifo(w.p("a/store"), 0o600); err != nil {
					w.t.Fatal(err)
				}
				w.own(w.p("a/store"), "alice", 0o600)
			},
			path: "a/store", refusal: []string{"a/store", "prw-------"}, wantIs: safepath.ErrNotRegular,
		},
		{
			name:   "DirectoryMissing",
			setup:  func(w *world) {},
			path:   "nope/store",
			wantIs: fs.ErrNotExist,
		},
		{
			name:   "StoreMissing",
			setup:  func(w *world) { w.dir("a", "alice", 0o755) },
			path:   "a/store",
			wantIs: fs.ErrNotExist,
		},
		{
			name: "FileOwnerIsNotDirectoryOwner",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.file("a/store", "bob", 0o600)
			},
			path: "a/store", refusal: []string{"a/store", "bob", "alice"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "RootDirectoryUserFile",
			setup: func(w *world) {
				w.dir("a", "root", 0o755)
				w.file("a/store", "bob", 0o600)
			},
			path: "a/store", want: "a/store",
		},
		{
			name: "GroupWritableDirectory",
			setup: func(w *world) {
				w.dir("a", "root", 0o775)
				w.file("a/store", "root", 0o600)
			},
			path: "a/store", refusal: []string{"a", "0775", "owner:"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "OtherWritableDirectory",
			setup: func(w *world) {
				w.dir("a", "alice", 0o757)
				w.file("a/store", "alice", 0o600)
			},
			path: "a/store", refusal: []string{"a", "alice", "0757"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "StickyWorldWritableDirectory",
			setup: func(w *world) {
				w.dir("a", "root", 0o777|os.ModeSticky)
				w.file("a/store", "bob", 0o600)
			},
			path: "a/store", want: "a/store",
		},
		{
			name: "OwnerAllowsGroupWritableDirectory",
			setup: func(w *world) {
				w.dir("a", "alice", 0o775)
				w.file("a/store", "alice", 0o600)
			},
			path: "a/store", owner: "alice", want: "a/store",
		},
		{
			name: "OwnerAllowsRootParts",
			setup: func(w *world) {
				w.dir("a", "root", 0o770)
				w.file("a/store", "root", 0o600)
				w.link("a/link", "store", "root")
			},
			path: "a/link", owner: "alice", want: "a/store",
		},
		{
			name: "OwnerRefusesOtherUsersFile",
			setup: func(w *world) {
				w.dir("a", "alice", 0o775)
				w.file("a/store", "bob", 0o600)
			},
			path: "a/store", owner: "alice", refusal: []string{"a/store", "bob", "alice"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "OwnerRefusesOtherUsersDirectory",
			setup: func(w *world) {
				w.dir("a", "bob", 0o755)
				w.file("a/store", "alice", 0o600)
			},
			path: "a/store", owner: "alice", refusal: []string{"a", "bob", "alice"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "OwnerRefusesOtherUsersLink",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.file("a/store", "alice", 0o600)
				w.link("a/link", "store", "bob")
			},
			path: "a/link", owner: "alice", refusal: []string{"a/link", "bob", "alice"}, wantIs: safepath.ErrRefused,
		},
		{
			// bob's link to bob's directory, in which alice's store lives:
			// the link rule holds, but with owner: alice every link must
			// be alice's or root's.
			name: "OwnerRefusesOtherUsersLinkOnTheWay",
			setup: func(w *world) {
				w.dir("x/bobs/alices", "alice", 0o755)
				w.own(w.p("x/bobs"), "bob", 0o755)
				w.file("x/bobs/alices/store", "alice", 0o600)
				w.link("sub", "x/bobs", "bob")
			},
			path: "sub/alices/store", owner: "alice", refusal: []string{"sub", "bob", "alice"}, wantIs: safepath.ErrRefused,
		},
		{
			name: "OtherUsersLinkOnTheWayWithoutOwner",
			setup: func(w *world) {
				w.dir("x/bobs/alices", "alice", 0o755)
				w.own(w.p("x/bobs"), "bob", 0o755)
				w.file("x/bobs/alices/store", "alice", 0o600)
				w.link("sub", "x/bobs", "bob")
			},
			path: "sub/alices/store", want: "x/bobs/alices/store",
		},
		{
			name: "OwnerStillAppliesTheLinkRule",
			setup: func(w *world) {
				w.dir("a", "alice", 0o755)
				w.dir("r", "root", 0o755)
				w.file("r/store", "root", 0o600)
				w.link("a/store", "../r/store", "alice")
			},
			path: "a/store", owner: "alice", refusal: []string{"a/store", "alice", "r/store", "root"}, wantIs: safepath.ErrRefused,
		},
	}
	alice, bob := testutil.NewUser(t), testutil.NewUser(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, alice, bob)
			tt.setup(w)
			var pol safepath.Policy
			if tt.owner != "" {
				name := tt.owner
				if u := w.who(name); u != nil {
					name = u.Name
				}
				o, err := safepath.LookupOwner(name)
				if err != nil {
					t.Fatal(err)
				}
				pol.Owner = o
			}
			before := snapshot(t, w.root)
			got, err := resolveAndOpen(w.p(tt.path), pol)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("got %v, want %s", err, tt.want)
				}
				if want := w.p(tt.want); got != want {
					t.Errorf("real path: got %s, want %s", got, want)
				}
				if ev, err := filepath.EvalSymlinks(w.p(tt.path)); err != nil || ev != got {
					t.Errorf("real path %s differs from EvalSymlinks' %s (%v)", got, ev, err)
				}
			} else {
				if !errors.Is(err, tt.wantIs) {
					t.Fatalf("got %v (real path %q), want an error wrapping %v", err, got, tt.wantIs)
				}
				for _, s := range tt.refusal {
					switch s {
					case "alice", "bob":
						s = w.who(s).Name
					case "root", "0775", "0757", "owner:", "prw-------":
					default:
						s = w.p(s)
					}
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %s", err, s)
					}
				}
			}
			if after := snapshot(t, w.root); after != before {
				t.Errorf("the tree changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// resolveAndOpen resolves path and opens the store, as a backend does,
// and returns the store's real path.
func resolveAndOpen(path string, pol safepath.Policy) (string, error) {
	s, err := safepath.Resolve(path, pol)
	if err != nil {
		return "", err
	}
	defer s.Close()
	f, _, err := s.Open()
	if err != nil {
		return s.Path, err
	}
	return s.Path, f.Close()
}

// snapshot lists every name under root with its type, owner, mode, size
// and modification time.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %v uid=%d size=%d mtime=%d ino=%d\n", p, fs.FileMode(st.Mode&0o7777), st.Uid, st.Size, st.Mtim.Nano(), st.Ino)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDir_NoRedirect: once resolved, nothing put on the path afterwards
// (the store's directory renamed away and replaced by a link to another
// user's directory, the store replaced by a link to another user's file)
// redirects an open, a create, a rename, a link or an unlink.
func TestDir_NoRedirect(t *testing.T) {
	w := newWorld(t, testutil.NewUser(t), testutil.NewUser(t))
	w.dir("a", "alice", 0o755)
	w.file("a/store", "alice", 0o600)
	w.dir("b", "bob", 0o755)
	w.file("b/store", "bob", 0o600)
	victim := snapshot(t, w.p("b"))

	s, err := safepath.Resolve(w.p("a/store"), safepath.Policy{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, st, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// The owner of a/ (and of its parent, here root acting for them)
	// swaps the path under the run.
	if err := os.Rename(w.p("a"), w.p("a.moved")); err != nil {
		t.Fatal(err)
	}
	w.link("a", "b", "alice")
	if err := os.Rename(w.p("a.moved/store"), w.p("a.moved/store.orig")); err != nil {
		t.Fatal(err)
	}
	w.link("a.moved/store", "@b/store", "alice")

	if _, _, err := s.Open(); !errors.Is(err, safepath.ErrRefused) {
		t.Errorf("open after the store became a link: got %v, want ErrRefused", err)
	}
	if _, err := s.Dir.Open(s.Name, os.O_WRONLY|os.O_APPEND, 0); !errors.Is(err, unix.ELOOP) {
		t.Errorf("open for writing through the link: got %v, want ELOOP", err)
	}
	tmp, err := s.Dir.CreateExclusive(".tmp", 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.WriteString("new\n"); err != nil {
		t.Fatal(err)
	}
	if err := s.Dir.LinkFile(tmp, ".second"); err != nil {
		t.Fatal(err)
	}
	tmp.Close()
	if got, err := s.Dir.Lstat(s.Name); err != nil || got.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Errorf("lstat of the store name: got mode %o, %v; want the link itself", got.Mode, err)
	}
	if err := s.Dir.Rename(".tmp", s.Name); err != nil {
		t.Fatal(err)
	}
	if err := s.Dir.Remove(".second"); err != nil {
		t.Fatal(err)
	}
	if err := s.Dir.Sync(); err != nil {
		t.Fatal(err)
	}
	names, err := s.Dir.Names()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "store,store.orig" && strings.Join(names, ",") != "store.orig,store" {
		t.Errorf("names: got %v, want the resolved directory's store and store.orig", names)
	}
	if data, err := os.ReadFile(w.p("a.moved/store")); err != nil || string(data) != "new\n" {
		t.Errorf("the rename did not land in the resolved directory: %q, %v", data, err)
	}
	var orig unix.Stat_t
	if err := unix.Lstat(w.p("a.moved/store.orig"), &orig); err != nil || orig.Ino != st.Ino {
		t.Errorf("the original store moved: %v", err)
	}
	if after := snapshot(t, w.p("b")); after != victim {
		t.Errorf("the other user's directory changed:\nbefore %s\nafter  %s", victim, after)
	}
	for _, bad := range []string{"", ".", "..", "x/y", "../b/store"} {
		if _, err := s.Dir.Open(bad, os.O_RDONLY, 0); !errors.Is(err, unix.EINVAL) {
			t.Errorf("open %q: got %v, want EINVAL (only single names)", bad, err)
		}
	}
}
