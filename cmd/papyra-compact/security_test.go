package main

import (
	"os"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestCLI_RefusesAnotherUsersStore is issue 17's report, run as the
// timer runs it: the owner of a/ replaced a/store with a symlink to
// b/store, a 0600 file of another user, and target a (max_records: 1)
// must fail with exit 1, name the link, its owner and the target, and
// leave b/store as it was; the other target still runs.
func TestCLI_RefusesAnotherUsersStore(t *testing.T) {
	tr := testutil.NewTree(t, map[string]testutil.User{"alice": testutil.NewUser(t), "bob": testutil.NewUser(t)})
	tr.Dir("papyra/a", "alice", 0o755)
	tr.Dir("papyra/b", "bob", 0o755)
	var recs strings.Builder
	for i := 0; i < 10; i++ {
		recs.WriteString(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": {}, "timestamp": 1794999990.0}` + "\n")
	}
	tr.File("papyra/b/store", "bob", recs.String())
	tr.File("papyra/a/own", "alice", recs.String())
	tr.Link("papyra/a/store", tr.P("papyra/b/store"), "alice")
	tr.Dir("agent", "root", 0o755)
	cfg := tr.P("agent/compact.yaml")
	y := "state_dir: " + tr.P("agent/state") + "\nlock_dir: " + tr.P("agent/lock") + "\nquarantine_dir: " + tr.P("agent/q") + "\n" +
		"metrics:\n  textfile: \"\"\ndefaults:\n  grace_period: 10ms\ntargets:\n" +
		"  - name: a\n    kind: jsonl\n    path: " + tr.P("papyra/a/store") + "\n    retention:\n      max_records: 1\n" +
		"  - name: a-own\n    kind: jsonl\n    path: " + tr.P("papyra/a/own") + "\n    retention:\n      max_records: 1\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	victim := testutil.Snapshot(t, tr.P("papyra/b"))
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000")
	if code != 1 {
		t.Errorf("exit code: got %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	out := stdout + stderr
	for _, s := range []string{tr.P("papyra/a/store"), tr.Name("alice"), tr.P("papyra/b/store"), tr.Name("bob")} {
		if !strings.Contains(out, s) {
			t.Errorf("output does not name %s:\nstdout: %s\nstderr: %s", s, stdout, stderr)
		}
	}
	if after := testutil.Snapshot(t, tr.P("papyra/b")); after != victim {
		t.Errorf("b/store changed:\nbefore:\n%s\nafter:\n%s", victim, after)
	}
	if got := testutil.ReadLines(t, tr.P("papyra/a/own")); len(got) != 1 {
		t.Errorf("the other target kept %d records, want 1: one refused target must not stop the others", len(got))
	}
}
