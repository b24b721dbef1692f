package jsonl_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/backends/jsonl"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// records is n fresh records.
func records(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteString(rec(i, fresh) + "\n")
	}
	return b.String()
}

// runAsAgent does what the agent does for one target: lock key, recover,
// plan, apply.
func runAsAgent(t *testing.T, path, owner string, e backends.Env) (backends.Stats, error) {
	t.Helper()
	tgt := config.Target{Name: "a", Kind: config.KindJSONL, Path: path, Owner: owner}
	if _, err := jsonl.LockKey(tgt); err != nil {
		return backends.Stats{}, err
	}
	b, err := jsonl.New(tgt, e)
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

// TestBackend_ActsOnlyForTheStoresOwner is issue 17's attack and its
// class: whoever controls a store's directory must not be able to aim the
// agent at a file of someone else. Each refused case leaves every file
// untouched; each allowed one compacts the store it resolves to.
func TestBackend_ActsOnlyForTheStoresOwner(t *testing.T) {
	users := map[string]testutil.User{"alice": testutil.NewUser(t), "bob": testutil.NewUser(t)}
	tests := []struct {
		name  string
		setup func(tr *testutil.Tree)
		path  string
		owner string // role named by owner:
		// compacted is the store (relative) that ends with one record;
		// "" means refused, and the error names every item of names.
		compacted string
		names     []string
	}{
		{
			// The issue: the owner of a/ replaced a/store with a symlink
			// to b/store, a 0600 file of another user.
			name: "FinalLinkToOtherUsersStore",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				tr.File("b/store", "bob", records(10))
				tr.Link("a/store", tr.P("b/store"), "alice")
			},
			path: "a/store", names: []string{"@a/store", "alice", "@b/store", "bob"},
		},
		{
			name: "LinkedParentDirectoryOfOtherUser",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				tr.File("b/store", "bob", records(10))
				tr.Link("a/data", "../b", "alice")
			},
			path: "a/data/store", names: []string{"@a/data", "alice", "@b", "bob"},
		},
		{
			name: "OtherUsersStoreInUsersDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.File("a/store", "bob", records(10))
			},
			path: "a/store", names: []string{"@a/store", "bob", "@a", "alice"},
		},
		{
			name: "GroupWritableDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "root", 0o775)
				tr.File("a/store", "root", records(10))
			},
			path: "a/store", names: []string{"@a", "0775", "owner: <user>"},
		},
		{
			name: "OwnerNamesAnotherUser",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.File("a/store", "alice", records(10))
			},
			path: "a/store", owner: "bob", names: []string{"@a", "alice", "bob"},
		},
		{
			name: "OwnerAllowsGroupWritableDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o775)
				tr.File("a/store", "alice", records(10))
			},
			path: "a/store", owner: "alice", compacted: "a/store",
		},
		{
			name: "OwnerRefusesOtherUsersStoreInGroupWritableDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o775)
				tr.File("a/store", "bob", records(10))
			},
			path: "a/store", owner: "alice", names: []string{"@a/store", "bob", "alice"},
		},
		{
			name: "RootOwnedLinkIsFollowed",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				tr.File("b/store", "bob", records(10))
				tr.Link("a/store", "../b/store", "root")
			},
			path: "a/store", compacted: "b/store",
		},
		{
			name: "LinkOfTheStoresOwnerIsFollowed",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "alice", 0o755)
				tr.Dir("b", "bob", 0o755)
				tr.File("b/store", "bob", records(10))
				tr.Link("a/store", "../b/store", "bob")
			},
			path: "a/store", compacted: "b/store",
		},
		{
			name: "UsersStoreInRootsDirectory",
			setup: func(tr *testutil.Tree) {
				tr.Dir("a", "root", 0o755)
				tr.File("a/store", "bob", records(10))
			},
			path: "a/store", compacted: "a/store",
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
			if got := testutil.ReadLines(t, tr.P(tt.compacted)); len(got) != 1 || st.RecordsAfter != 1 {
				t.Errorf("%s: got %d lines (stats %d), want 1", tt.compacted, len(got), st.RecordsAfter)
			}
		})
	}
	t.Run("UnknownOwner", func(t *testing.T) {
		tr := testutil.NewTree(t, users)
		tr.Dir("a", "root", 0o755)
		tr.File("a/store", "root", records(10))
		before := testutil.Snapshot(t, tr.Root)
		if _, err := runAsAgent(t, tr.P("a/store"), "pct-no-such-user", env(t.TempDir())); err == nil || !strings.Contains(err.Error(), "pct-no-such-user") {
			t.Errorf("got %v, want an error naming the unknown owner", err)
		}
		if after := testutil.Snapshot(t, tr.Root); after != before {
			t.Errorf("files changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
}

// TestBackend_StoreMovedAfterLocking: the lock is taken on the real path
// the target resolved to; if the path resolves elsewhere by the time the
// backend starts (a link re-aimed in between), the run fails with
// ErrChanged and touches neither file, so the lock, the recovery record
// and the files changed always name one store.
func TestBackend_StoreMovedAfterLocking(t *testing.T) {
	tr := testutil.NewTree(t, nil)
	tr.Dir("a", "root", 0o755)
	tr.File("a/one", "root", records(5))
	tr.File("a/two", "root", records(5))
	tr.Link("a/store", "one", "root")
	tgt := config.Target{Name: "a", Kind: config.KindJSONL, Path: tr.P("a/store")}
	key, err := jsonl.LockKey(tgt)
	if err != nil || key != tr.P("a/one") {
		t.Fatalf("lock key: got %q, %v; want %s", key, err, tr.P("a/one"))
	}
	if err := os.Remove(tr.P("a/store")); err != nil {
		t.Fatal(err)
	}
	tr.Link("a/store", "two", "root")
	before := testutil.Snapshot(t, tr.Root)
	e := env(t.TempDir())
	e.LockKey = key
	b, err := jsonl.New(tgt, e)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = compact(t, b, config.Retention{MaxRecords: ptr[int64](1)})
	if !errors.Is(err, backends.ErrChanged) || !strings.Contains(err.Error(), tr.P("a/two")) {
		t.Errorf("got %v, want ErrChanged naming %s", err, tr.P("a/two"))
	}
	if after := testutil.Snapshot(t, tr.Root); after != before {
		t.Errorf("files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
