package segments_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/segments"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// runAsAgent does what the agent does for one rotating target (max_bytes
// 1 MiB, max_files 5, max_records 1): lock key, recover, plan, apply.
func runAsAgent(t *testing.T, active, owner string, e backends.Env) (backends.Stats, error) {
	t.Helper()
	maxBytes, maxFiles := int64(1<<20), int64(5)
	tgt := config.Target{Name: "a", Kind: config.KindRotating, Path: active, Owner: owner, MaxBytes: &maxBytes, MaxFiles: &maxFiles}
	if _, err := segments.LockKey(tgt); err != nil {
		return backends.Stats{}, err
	}
	b, err := segments.New(tgt, e)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	if err := b.Recover(ctx); err != nil {
		return backends.Stats{}, err
	}
	p, err := b.Plan(ctx, backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](1)}, Now: backendtest.Now})
	if err != nil {
		return backends.Stats{}, err
	}
	defer p.Close()
	return b.Apply(ctx, p)
}

// family writes store.log.2, store.log.1 and store.log (three fresh
// records each) in dir, owned by role.
func family(tr *testutil.Tree, dir, role string) {
	for i, name := range []string{"store.log.2", "store.log.1", "store.log"} {
		tr.File(dir+"/"+name, role, rec(3*i+1, fresh)+rec(3*i+2, fresh)+rec(3*i+3, fresh))
	}
}

// TestBackend_ActsOnlyForTheStoresOwner: issue 17's attack on a rotating
// store, and its class. Each refused case leaves every file untouched;
// each allowed one keeps one record.
func TestBackend_ActsOnlyForTheStoresOwner(t *testing.T) {
	users := map[string]testutil.User{"alice": testutil.NewUser(t), "bob": testutil.NewUser(t)}
	tests := []struct {
		name  string
		setup func(tr *testutil.Tree)
		path  string
		owner string
		// compacted is the active file (relative) whose family ends with
		// one record; "" means refused, and the error names every item
		// of names ("@x" is a path in the tree).
		compacted string
		names     []string
	}{
		{
			name: "LinkedDirectoryOfOtherUser",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				family(tr, "b", "bob")
				tr.Link("a/data", "../b", "alice")
			},
			path: "a/data/store.log", names: []string{"@a/data", "alice", "@b", "bob"},
		},
		{
			name: "SegmentLinkToOtherUsersFile",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				family(tr, "a", "alice")
				tr.File("b/victim", "bob", rec(100, fresh))
				if err := os.Remove(tr.P("a/store.log.1")); err != nil {
					t.Fatal(err)
				}
				tr.Link("a/store.log.1", tr.P("b/victim"), "alice")
			},
			path: "a/store.log", names: []string{"@a/store.log.1", "not a regular file"},
		},
		{
			name: "OtherUsersSegmentInUsersDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				family(tr, "a", "alice")
				tr.Own("a/store.log.2", "bob", 0o600)
			},
			path: "a/store.log", names: []string{"@a/store.log.2", "bob", "@a", "alice"},
		},
		{
			name: "GroupWritableDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "root", 0o770)
				family(tr, "a", "root")
			},
			path: "a/store.log", names: []string{"@a", "0770", "owner: <user>"},
		},
		{
			name: "OwnerAllowsGroupWritableDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o770)
				family(tr, "a", "alice")
			},
			path: "a/store.log", owner: "alice", compacted: "a/store.log",
		},
		{
			name: "OwnerRefusesOtherUsersSegment",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o770)
				family(tr, "a", "alice")
				tr.Own("a/store.log.1", "bob", 0o600)
			},
			path: "a/store.log", owner: "alice", names: []string{"@a/store.log.1", "bob", "alice"},
		},
		{
			name: "RootOwnedDirectoryLinkIsFollowed",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				family(tr, "b", "bob")
				tr.Link("a/data", "../b", "root")
			},
			path: "a/data/store.log", compacted: "b/store.log",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testutil.NewTree(t, users)
			tt.setup(tr)
			owner := ""
			if tt.owner != "" {
				owner = tr.Name(tt.owner)
			}
			before := testutil.Snapshot(t, tr.Root)
			st, err := runAsAgent(t, tr.P(tt.path), owner, env(t.TempDir()))
			if tt.compacted == "" {
				if !errors.Is(err, backends.ErrUnsafe) {
					t.Fatalf("got %v (%d records after), want a refusal wrapping ErrUnsafe", err, st.RecordsAfter)
				}
				for _, n := range tt.names {
					if strings.HasPrefix(n, "@") {
						n = tr.P(n[1:])
					} else if _, ok := users[n]; ok {
						n = tr.Name(n)
					}
					if !strings.Contains(err.Error(), n) {
						t.Errorf("error %q does not name %s", err, n)
					}
				}
				if after := testutil.Snapshot(t, tr.Root); after != before {
					t.Errorf("files changed although the target was refused:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := readStore(t, tr.P(tt.compacted)); len(got) != 1 || got[0] != strings.TrimSuffix(rec(9, fresh), "\n") || st.RecordsAfter != 1 {
				t.Errorf("%s: got %q (stats %d), want the last record only", tt.compacted, got, st.RecordsAfter)
			}
		})
	}
}

// TestBackend_StoreMovedAfterLocking: the lock is taken on the store's
// real directory as resolved; if the path resolves to another directory
// by the time the backend starts, the run fails with ErrChanged and
// touches neither family.
func TestBackend_StoreMovedAfterLocking(t *testing.T) {
	tr := testutil.NewTree(t, nil)
	tr.Dir("one", "root", 0o755)
	tr.Dir("two", "root", 0o755)
	family(tr, "one", "root")
	family(tr, "two", "root")
	tr.Link("data", "one", "root")
	maxBytes, maxFiles := int64(1<<20), int64(5)
	tgt := config.Target{Name: "a", Kind: config.KindRotating, Path: tr.P("data/store.log"), MaxBytes: &maxBytes, MaxFiles: &maxFiles}
	key, err := segments.LockKey(tgt)
	if err != nil || key != tr.P("one/store.log") {
		t.Fatalf("lock key: got %q, %v; want %s", key, err, tr.P("one/store.log"))
	}
	if err := os.Remove(tr.P("data")); err != nil {
		t.Fatal(err)
	}
	tr.Link("data", "two", "root")
	before := testutil.Snapshot(t, tr.Root)
	e := env(t.TempDir())
	e.LockKey = key
	_, err = compact(t, newBackendIn(t, tgt.Path, maxBytes, maxFiles, e), config.Retention{MaxRecords: ptr[int64](1)})
	if !errors.Is(err, backends.ErrChanged) || !strings.Contains(err.Error(), tr.P("two/store.log")) {
		t.Errorf("got %v, want ErrChanged naming %s", err, tr.P("two/store.log"))
	}
	if after := testutil.Snapshot(t, tr.Root); after != before {
		t.Errorf("files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
