package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RerunWithoutCapLease runs the calling (sub)test again in a copy of the
// test binary that has every capability but CAP_LEASE (setpriv, from
// util-linux), as a run started by hand or by a unit without it would.
// env is set to "1" in the copy, so that the test knows it is the copy
// and does the work. t fails unless the copy passed that test; the copy's
// output is returned for further checks.
func RerunWithoutCapLease(t *testing.T, env string) []byte {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "the test gives a file to another user: needs root")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		SkipOrFail(t, "setpriv (util-linux) not found: %v", err)
	}
	run := "^" + strings.ReplaceAll(t.Name(), "/", "$/^") + "$"
	cmd := exec.Command(setpriv, "--inh-caps=-lease", "--bounding-set=-lease", "--",
		os.Args[0], "-test.run="+run, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("without CAP_LEASE (%v):\n%s", err, out)
	}
	return out
}
