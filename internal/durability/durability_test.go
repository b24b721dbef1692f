package durability_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// traced lists the calls the checker reads: the writes and syncs, the
// renames, links and unlinks that change names, and the exit.
const traced = "openat,write,pwrite64,writev,pwritev,copy_file_range,ftruncate,fsync,fdatasync," +
	"rename,renameat,renameat2,link,linkat,unlink,unlinkat,exit_group"

// TestDurability_SwapOrder runs real compactions under strace and checks,
// for every swap, the order durability rests on (see durabilityErrors):
// the new file's data fsynced before the rename, the directory fsynced
// after it and before the run reports and exits, the recovery record
// durable before the store changes. Covered: a JSON-lines store, a
// rotating store rewritten in place and one the compactor rotates itself
// (segments dropped, a boundary segment rewritten, the active file
// replaced), the agent's state file and the metrics textfile, all on
// small stores.
func TestDurability_SwapOrder(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		testutil.SkipOrFail(t, "strace not installed (make deps installs it)")
	}
	bin := testutil.Binary(t)
	now := time.Now().Unix()
	fresh := func(i int) string { return line(i, float64(now-60)) }
	old := func(i int) string { return line(i, float64(now-10*86400)) }
	for _, tc := range []struct {
		name  string
		kind  string
		files map[string]string // store files by name, the first is the path
		extra string            // target settings
	}{
		{
			name:  "JSONL",
			kind:  "jsonl",
			files: map[string]string{"store.jsonl": old(1) + fresh(2) + "not json\n" + old(3) + fresh(4)},
		},
		{
			name: "RotatingInPlace",
			kind: "rotating",
			files: map[string]string{
				"store.log":   old(1) + fresh(2) + "not json\n",
				"store.log.1": fresh(3),
				"store.log.2": old(4) + fresh(5),
				"store.log.3": old(6) + old(7),
			},
			extra: "    max_bytes: 1048576\n    max_files: 6\n",
		},
		{
			name: "RotatingSelfRotated",
			kind: "rotating",
			files: map[string]string{
				"store.log":   old(1) + fresh(2),
				"store.log.2": old(4) + fresh(5),
				"store.log.3": old(6) + old(7),
			},
			extra: "    max_bytes: 1048576\n    max_files: 6\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			if err := os.MkdirAll(data, 0o755); err != nil {
				t.Fatal(err)
			}
			var path string
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(data, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(name, ".log.") {
					path = filepath.Join(data, name)
				}
			}
			state := filepath.Join(dir, "state")
			textfile := filepath.Join(dir, "metrics", "papyra_compact.prom")
			for _, d := range []string{state, filepath.Dir(textfile)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cfg := filepath.Join(dir, "compact.yaml")
			y := fmt.Sprintf("state_dir: %s\nlock_dir: %s/lock\nquarantine_dir: %s/quarantine\nmetrics:\n  textfile: %s\n"+
				"defaults:\n  grace_period: 20ms\ntargets:\n  - name: t\n    kind: %s\n    path: %s\n%s    retention:\n      max_age: 1d\n",
				state, dir, dir, textfile, tc.kind, path, tc.extra)
			if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
				t.Fatal(err)
			}
			trace := filepath.Join(dir, "trace")
			cmd := exec.Command("strace", "-f", "-y", "-qq", "-s", "4096", "-o", trace, "-e", "trace="+traced,
				bin, "run", "--config", cfg, "--no-progress")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("run under strace: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "t: success") {
				t.Fatalf("the run did not compact:\n%s", out)
			}
			errs, swaps := durabilityErrors(parseTrace(t, trace), rules{storeDir: data, stateDir: state})
			for _, e := range errs {
				t.Error(e)
			}
			// The checker must have seen what it is meant to check.
			seen := map[string]bool{}
			for _, s := range swaps {
				switch {
				case filepath.Dir(s.to) == data && !strings.HasPrefix(filepath.Base(s.to), "."):
					seen["store"] = true
				case filepath.Dir(s.to) == state:
					seen["recovery record"] = true
				case strings.HasPrefix(s.to, state+"/"):
					seen["state file"] = true
				case s.to == textfile:
					seen["textfile"] = true
				}
			}
			for _, want := range []string{"store", "recovery record", "state file", "textfile"} {
				if !seen[want] {
					t.Errorf("the trace shows no swap of the %s: the check checked nothing there (%d swaps: %v)", want, len(swaps), swaps)
				}
			}
			if t.Failed() {
				t.Logf("run said:\n%s", out)
			}
		})
	}
}

// line is a Papyra record with payload {"i": i}.
func line(i int, ts float64) string {
	return `{"kind": "event", "payload": {"i": ` + strconv.Itoa(i) + `}, "timestamp": ` + strconv.FormatFloat(ts, 'f', 1, 64) + "}\n"
}
