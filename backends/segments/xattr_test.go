package segments_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// attrsOf is what getfacl and getfattr say about path (without its name):
// its ACL and every extended attribute, in all namespaces.
func attrsOf(t *testing.T, path string) string {
	t.Helper()
	var b strings.Builder
	for _, c := range [][]string{{"getfacl", "--absolute-names", path}, {"getfattr", "--absolute-names", "-d", "-m", "-", path}} {
		for _, l := range strings.Split(run(t, c[0], c[1:]...), "\n") {
			if !strings.HasPrefix(l, "# file:") {
				b.WriteString(l + "\n")
			}
		}
	}
	return b.String()
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

// TestBackend_KeepsACLsAndXattrs: every file a run puts in the store —
// the replacement of a rotated segment, the replacement of the active
// file, the empty active file of a self-rotation — carries the original's
// POSIX ACL and extended attributes (user, trusted, security namespaces).
func TestBackend_KeepsACLsAndXattrs(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "setting trusted.* attributes needs root")
	}
	papyra := testutil.NewUser(t)
	for _, tc := range []struct {
		maxFiles int64
		in       layout
	}{
		// Segment 1 rewritten, the active file replaced in place.
		{5, layout{1: rec(1, old) + rec(2, fresh), 0: rec(3, old) + rec(4, fresh)}},
		// Segment 1 dropped: the active file is rotated to slot 1 and
		// rewritten there, an empty file of ours becomes the active file.
		{5, layout{1: rec(1, old), 0: rec(3, old) + rec(4, fresh)}},
		// max_files 1: the active file alone, replaced in place.
		{1, layout{0: rec(3, old) + rec(4, fresh)}},
	} {
		maxFiles := tc.maxFiles
		active := lay(t, tc.in)
		segs, _ := segmentFiles(t, active)
		for _, s := range segs {
			p := filepath.Join(filepath.Dir(active), s)
			if err := os.Chmod(p, 0o600); err != nil {
				t.Fatal(err)
			}
			run(t, "setfacl", "-m", "u:"+papyra.Name+":rw", p)
			run(t, "setfattr", "-n", "user.papyra", "-v", "orders", p)
			run(t, "setfattr", "-n", "trusted.papyra", "-v", "0x00ff01", p)
			run(t, "setfattr", "-n", "security.papyra", "-v", "label", p)
		}
		want := attrsOf(t, active)
		if _, err := compact(t, newBackend(t, active, 1<<20, maxFiles), config.Retention{MaxAgeSeconds: ptr(1800.0)}); err != nil {
			t.Fatalf("max_files %d: compact: %v", maxFiles, err)
		}
		segs, _ = segmentFiles(t, active)
		for _, s := range segs {
			if got := attrsOf(t, filepath.Join(filepath.Dir(active), s)); got != want {
				t.Errorf("max_files %d: %s after the run:\n%s\nwant:\n%s", maxFiles, s, got, want)
			}
		}
	}
}
