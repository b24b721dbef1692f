package agent_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// catalogFile is the journal message catalog the packages install in
// /usr/lib/systemd/catalog/.
const catalogFile = "../packaging/journal/papyra-compact.catalog"

// TestCatalog: the catalog explains exactly the MESSAGE_IDs the agent
// logs (a new ID without an entry, or an entry for an ID nothing logs,
// fails), each with a Subject and Defined-By, and journalctl itself
// builds its database from it and lists every entry (`--root`: a
// throwaway tree, not the host's catalog).
func TestCatalog(t *testing.T) {
	ids := []string{agent.MessageIDRunFinished, agent.MessageIDRunFailed, agent.MessageIDEmergencyDrop,
		agent.MessageIDKeepFreeUnmet, agent.MessageIDKeepFreeMet}
	text, err := os.ReadFile(catalogFile)
	if err != nil {
		t.Fatal(err)
	}
	header := regexp.MustCompile(`(?m)^-- ([0-9a-f]{32})$`)
	var got []string
	entries := header.Split(string(text), -1)[1:]
	for i, m := range header.FindAllStringSubmatch(string(text), -1) {
		got = append(got, m[1])
		for _, field := range []string{"\nSubject: ", "\nDefined-By: papyra-compact\n"} {
			if !strings.Contains(entries[i], field) {
				t.Errorf("catalog entry %s: no %q line", m[1], strings.TrimSpace(field))
			}
		}
	}
	slices.Sort(ids)
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("catalog entries %v, want one for each MESSAGE_ID the agent logs: %v", got, ids)
	}

	journalctl, err := exec.LookPath("journalctl")
	if err != nil {
		testutil.SkipOrFail(t, "journalctl not installed: %v", err)
		return
	}
	root := t.TempDir()
	dir := filepath.Join(root, "usr/lib/systemd/catalog")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "papyra-compact.catalog"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(journalctl, "--root="+root, "--update-catalog").CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("journalctl --update-catalog: %v: %s", err, out)
	}
	out, err := exec.Command(journalctl, "--root="+root, "--list-catalog").Output()
	if err != nil {
		t.Fatalf("journalctl --list-catalog: %v", err)
	}
	for _, id := range ids {
		if !strings.Contains(string(out), id+" papyra-compact: ") {
			t.Errorf("journalctl --list-catalog does not list %s:\n%s", id, out)
		}
	}
}
