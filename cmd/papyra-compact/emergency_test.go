package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// emergencyStore lays a rotating store on a nearly full small tmpfs: the
// active file (records a day old), audit.log.1 (10 days) and audit.log.2
// (12 days, plus extra at its end); keep_free 90%, so that both rotated
// segments go and keep_free is still not met. It returns the store's
// directory, the active file and the configuration.
func emergencyStore(t *testing.T, extra string) (data, active, cfg string) {
	t.Helper()
	mnt := testutil.Tmpfs(t, "1536k")
	data = filepath.Join(mnt, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	active = filepath.Join(data, "audit.log")
	now := time.Now().Unix()
	for i, days := range map[int]int64{0: 1, 1: 10, 2: 12} {
		var b strings.Builder
		for n := 0; b.Len() < 60<<10; n++ {
			fmt.Fprintf(&b, `{"system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": {"n": %d}, "timestamp": %d.5, "kind": "event"}`+"\n",
				n, now-days*86400+int64(n))
		}
		p := active
		if i > 0 {
			p += fmt.Sprint(".", i)
		}
		if i == 2 {
			b.WriteString(extra)
		}
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg = filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: \"\"\ndefaults:\n  grace_period: 10ms\ntargets:\n" +
		"  - {name: audit, kind: rotating, path: " + active + ", max_bytes: 1048576, max_files: 10, keep_free: 90%, min_keep: 1d}\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "filler"), make([]byte, testutil.FreeBytes(t, mnt)-100<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	return data, active, cfg
}

// TestCLI_EmergencyFreeSpace: on a nearly full file system, `run` drops
// the opted-in store's rotated segments before its targets, prints each
// drop with its time span and says keep_free cannot be met (the active
// file stays); `status` shows the drops, warns and exits 1.
func TestCLI_EmergencyFreeSpace(t *testing.T) {
	data, active, cfg := emergencyStore(t, "")
	before, err := os.ReadFile(active)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, "run", "--config", cfg)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"audit: emergency drop of " + active + ".2: ",
		"audit: emergency drop of " + active + ".1: ",
		"keep_free not met on the file system of " + data,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("run:\n%s", out)
	if strings.Index(out, ".2: ") > strings.Index(out, ".1: ") {
		t.Errorf("not oldest first:\n%s", out)
	}
	for _, gone := range []string{active + ".1", active + ".2"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s still there", gone)
		}
	}
	if after, err := os.ReadFile(active); err != nil || string(after) != string(before) {
		t.Errorf("the active file changed: %v", err)
	}
	code, out, _ = cli(t, "status", "--config", cfg)
	t.Logf("status:\n%s", out)
	if code != 1 || !strings.Contains(out, "WARNING: keep_free not met on the file system of target audit") ||
		!strings.Contains(out, "audit: 2 segments dropped (") || !strings.Contains(out, "(NOT met)") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	_, out, _ = cli(t, "status", "--config", cfg, "--json")
	var rep struct {
		Targets []struct {
			Emergency struct {
				DroppedSegments int  `json:"dropped_segments"`
				DroppedRecords  int  `json:"dropped_records"`
				Unmet           bool `json:"unmet"`
			} `json:"emergency"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if e := rep.Targets[0].Emergency; e.DroppedSegments != 2 || e.DroppedRecords == 0 || !e.Unmet {
		t.Errorf("status --json emergency: %+v", e)
	}
}

// TestCLI_EmergencyKilled kills `run` (SIGKILL, at each step of the
// drop's machinery it reaches) in the middle of an emergency drop, then
// runs it again: the killed drop is finished or undone, both rotated
// segments end up gone, the active file is untouched, the corrupt line
// of the dropped segment is in quarantine, and no side file is left.
func TestCLI_EmergencyKilled(t *testing.T) {
	bin := testutil.Binary(t, "failpoints")
	steps := []string{"rotating-anchored", "rotating-prepared", "rotating-dropped", "rotating-drained", "rotating-unfrozen"}
	if testing.Short() {
		steps = []string{"rotating-anchored", "rotating-dropped"} // before and after the unlink
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			data, active, cfg := emergencyStore(t, "this line is corrupt\n")
			before, err := os.ReadFile(active)
			if err != nil {
				t.Fatal(err)
			}
			log := filepath.Join(t.TempDir(), "fp.log")
			cmd := exec.Command(bin, "run", "--config", cfg)
			cmd.Env = append(os.Environ(), "PAPYRA_FAILPOINT="+step, "PAPYRA_FAILPOINT_LOG="+log)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("run with %s: %v, want killed\n%s", step, err, out)
			}
			out, err = exec.Command(bin, "run", "--config", cfg).CombinedOutput()
			if err != nil {
				t.Fatalf("run after the kill: %v\n%s", err, out)
			}
			for _, gone := range []string{active + ".1", active + ".2"} {
				if _, err := os.Stat(gone); err == nil {
					t.Errorf("%s still there", gone)
				}
			}
			if after, err := os.ReadFile(active); err != nil || string(after) != string(before) {
				t.Errorf("the active file changed: %v", err)
			}
			testutil.AssertNoSideFiles(t, data)
			if ents, err := os.ReadDir(data); err != nil || len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("the store's directory holds %v (%v), want the active file alone (no anchor left)", names, err)
			}
			q, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg), "q", "audit", "*"))
			found := false
			for _, f := range q {
				b, _ := os.ReadFile(f)
				found = found || strings.Contains(string(b), "this line is corrupt")
			}
			if !found {
				t.Errorf("the corrupt line is not in quarantine (%v)\n%s", q, out)
			}
		})
	}
}
