package testutil_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestLayering enforces the import rules the layout promises (what
// depguard would): backends never import agent or cmd; the commands reach
// the stores only through the contract (backends) and the registry
// (backends/all), never a concrete backend; and no production package
// runs programs (os/exec is for tests and their helpers only).
func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...")
	cmd.Dir = testutil.Root(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const mod = "github.com/papyra-compact/papyra-compact/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		for _, imp := range strings.Fields(imports) {
			if strings.HasPrefix(pkg, mod+"backends") && (strings.HasPrefix(imp, mod+"agent") || strings.HasPrefix(imp, mod+"cmd")) {
				t.Errorf("%s imports %s: backends must not depend on the agent or the commands", pkg, imp)
			}
			if strings.HasPrefix(pkg, mod+"cmd") && strings.HasPrefix(imp, mod+"backends/") && imp != mod+"backends/all" {
				t.Errorf("%s imports %s: commands must reach a backend through backends/all, not import it", pkg, imp)
			}
			if imp == "os/exec" && pkg != mod+"internal/testutil" {
				t.Errorf("%s imports os/exec outside tests", pkg)
			}
		}
	}
}
