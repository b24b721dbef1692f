package segments_test

import (
	"errors"
	"os"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestBackend_RacingRenamer: while runs compact the family of
// home/a/store.log, the owner of the directories flips, in a tight loop,
// a segment between a regular file and a symlink to another user's file,
// and the store's directory between a real directory and a symlink to
// that user's directory holding a family of the same names. The other
// user's files are never modified, and nothing is written outside the
// real directory of the store.
func TestBackend_RacingRenamer(t *testing.T) {
	tr := testutil.NewTree(t, map[string]testutil.User{"alice": testutil.NewUser(t), "bob": testutil.NewUser(t)})
	tr.Dir("home/a", "alice", 0o755)
	tr.Own("home", "alice", 0o755)
	tr.Dir("b", "bob", 0o755)
	family(tr, "b", "bob")
	tr.Link("home/a.swap", "../b", "alice")
	victim := testutil.Snapshot(t, tr.P("b"))
	runs := 150
	if testing.Short() {
		runs = 45
	}
	e := env(t.TempDir())
	e.GracePeriod = 0
	outcomes := map[string]int{}
	for i := 0; i < runs; i++ {
		ents, err := os.ReadDir(tr.P("home/a"))
		if err != nil {
			t.Fatal(err)
		}
		for _, ent := range ents {
			if err := os.Remove(tr.P("home/a/" + ent.Name())); err != nil {
				t.Fatal(err)
			}
		}
		family(tr, "home/a", "alice")
		tr.Link("home/a/x.swap", tr.P("b/store.log.1"), "alice")
		var flippers []*testutil.Flipper
		if i%3 != 1 {
			flippers = append(flippers, testutil.StartFlipper(t, tr.P("home/a"), "store.log.1", "x.swap"))
		}
		if i%3 != 0 {
			flippers = append(flippers, testutil.StartFlipper(t, tr.P("home"), "a", "a.swap"))
		}
		_, err = runAsAgent(t, tr.P("home/a/store.log"), "", e)
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
		if ents, err := os.ReadDir(tr.P("home")); err != nil || len(ents) != 2 {
			t.Fatalf("run %d wrote outside the store's directory: home holds %v (%v)", i, ents, err)
		}
	}
	t.Logf("%d runs: %v", runs, outcomes)
	if outcomes["compacted"] == 0 {
		t.Errorf("no run compacted the real store: the race never let one through, so the test proves little")
	}
}
