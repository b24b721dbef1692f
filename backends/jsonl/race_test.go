package jsonl_test

import (
	"errors"
	"os"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_RacingRenamer: while runs compact a/store, the owner of the
// directories flips, in a tight loop, the store between a regular file
// and a symlink to another user's store, and the store's directory
// between a real directory and a symlink to that user's directory. Every
// run either compacts the real a/store or fails; the other user's files
// are never modified, and nothing is written outside the real directory
// of a/store.
func TestBackend_RacingRenamer(t *testing.T) {
	alice, bob := testutil.NewUser(t), testutil.NewUser(t)
	tr := testutil.NewTree(t, map[string]testutil.User{"alice": alice, "bob": bob})
	tr.Dir("home", "alice", 0o755) // alice controls the names in it
	tr.Dir("home/a", "alice", 0o755)
	tr.Dir("b", "bob", 0o755)
	tr.File("b/store", "bob", records(10))
	tr.Link("home/a.swap", "../b", "alice")                // flips with home/a
	tr.Link("home/a/store.swap", tr.P("b/store"), "alice") // flips with home/a/store
	victim := testutil.Snapshot(t, tr.P("b"))
	runs := 300
	if testing.Short() {
		runs = 60
	}
	e := env(t.TempDir())
	e.GracePeriod = 0
	outcomes := map[string]int{}
	for i := 0; i < runs; i++ {
		tr.File("home/a/store", "alice", records(20))
		var flippers []*testutil.Flipper
		switch i % 3 {
		case 0:
			flippers = append(flippers, testutil.StartFlipper(t, tr.P("home/a"), "store", "store.swap"))
		case 1:
			flippers = append(flippers, testutil.StartFlipper(t, tr.P("home"), "a", "a.swap"))
		default:
			flippers = append(flippers,
				testutil.StartFlipper(t, tr.P("home/a"), "store", "store.swap"),
				testutil.StartFlipper(t, tr.P("home"), "a", "a.swap"))
		}
		_, err := runAsAgent(t, tr.P("home/a/store"), "", e)
		for _, f := range flippers {
			f.Stop(t)
		}
		switch {
		case err == nil:
			outcomes["compacted"]++
		case errors.Is(err, backends.ErrUnsafe):
			outcomes["refused"]++
		case errors.Is(err, backends.ErrChanged):
			outcomes["changed"]++
		case errors.Is(err, backends.ErrNothingToDo):
			outcomes["nothing to do"]++
		default:
			outcomes["other: "+err.Error()]++
		}
		if after := testutil.Snapshot(t, tr.P("b")); after != victim {
			t.Fatalf("run %d (%v) modified the other user's directory:\nbefore:\n%s\nafter:\n%s", i, err, victim, after)
		}
		ents, err := os.ReadDir(tr.P("home"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 2 {
			t.Fatalf("run %d wrote outside the store's directory: home holds %v", i, ents)
		}
	}
	t.Logf("%d runs: %v", runs, outcomes)
	if outcomes["compacted"] == 0 {
		t.Errorf("no run compacted the real store: the race never let one through, so the test proves little")
	}
}
