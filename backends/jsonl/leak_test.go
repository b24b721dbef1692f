//go:build failpoints

package jsonl_test

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestCrash_NoLeftovers kills `papyra-compact run` with SIGKILL again and
// again on ONE store (at the swap's fail points and at random moments)
// while a Papyra-style writer appends, never cleaning up in between; then
// one clean run. Nothing any run created may be left in the state, lock,
// store or quarantine directories (no temp file of a record write, no
// temp copy, no scratch file, no unnamed quarantine part), the recovery
// record is gone, and every appended record is there once. A textfile is
// configured, and kills land in the agent's writes of its state and the
// textfile too: their temp files are swept by the next run.
// PAPYRA_LEAK_KILLS sets the kills (default 200; 40 with -short).
func TestCrash_NoLeftovers(t *testing.T) {
	kills := 200
	if testing.Short() {
		kills = 40
	}
	if s := os.Getenv("PAPYRA_LEAK_KILLS"); s != "" {
		kills, _ = strconv.Atoi(s)
	}
	const perWriter = 40
	bin := testutil.Binary(t, "failpoints")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "events.ndjson")
	cfg := writeCrashConfig(t, dir, store)
	withTextfile(t, cfg, filepath.Join(dir, "textfile", "papyra.prom"))
	// The swap's steps, and the agent's writes of state and textfile.
	steps := append(append([]string(nil), crashSteps...), "state-temp-synced", "textfile-temp-synced")
	var seed strings.Builder
	now := float64(time.Now().Unix())
	for i := 0; i < 200; i++ {
		seed.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: now - 60 - float64(i%2)*10*86400}.JSON() + "\n")
		if i%50 == 7 {
			seed.WriteString(corruptSeeds[(i/50)%len(corruptSeeds)] + "\n")
		}
	}
	if err := os.WriteFile(store, []byte(seed.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < kills; i++ {
		w := exec.Command(exe, "-test.run=^$")
		w.Env = append(os.Environ(), "PAPYRA_TEST_APPENDER="+appenderSpec(store, i, perWriter, crashPause, crashHold))
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		run := exec.Command(bin, "run", "--config", cfg, "--no-progress")
		if i%3 == 0 {
			run.Env = append(os.Environ(), "PAPYRA_FAILPOINT="+steps[(i/3)%len(steps)])
		}
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		if i%3 != 0 {
			time.Sleep(time.Duration(rng.IntN(80_000)) * time.Microsecond)
			_ = run.Process.Signal(syscall.SIGKILL)
		}
		_ = run.Wait()
		if err := w.Wait(); err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	if out, err := exec.Command(bin, "run", "--config", cfg, "--no-progress").CombinedOutput(); err != nil {
		t.Fatalf("the clean run after %d kills failed: %v\n%s", kills, err, out)
	}
	for _, d := range []string{filepath.Dir(store), filepath.Join(dir, "state"), filepath.Join(dir, "state", "targets"), filepath.Join(dir, "lock"),
		filepath.Join(dir, "quarantine", "crash"), filepath.Join(dir, "textfile")} {
		if _, err := os.Stat(d); err == nil {
			testutil.AssertNoSideFiles(t, d)
		}
	}
	if recs, _ := filepath.Glob(filepath.Join(dir, "state", "jsonl-swap-*")); len(recs) != 0 {
		t.Errorf("recovery record files left after a clean run: %v", recs)
	}
	c := takeCensus(t, store)
	if missing, dups := c.missingAppended(kills, perWriter); len(missing) > 0 || dups > 0 {
		t.Errorf("%d appended records lost (first: %v), %d duplicated", len(missing), first(missing, 5), dups)
	}
	t.Logf("%d kills on one store, then a clean run: no leftovers", kills)
}

// withTextfile sets metrics.textfile in the config file cfg.
func withTextfile(t *testing.T, cfg, textfile string) {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), `textfile: ""`, "textfile: "+textfile, 1)
	if y == string(b) {
		t.Fatal("the crash config has no textfile line to set")
	}
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCrash_StateAndTextfileTempsSwept kills `papyra-compact run` with
// SIGKILL at its first, second, third … write of a state file or the
// textfile, once the temp file is written and before its rename, until a
// run gets past them all: each kill leaves a temp file behind. The next
// run, which holds the state lock, sweeps them: after a clean run there is
// no temp file in the state directory, its targets directory or the
// textfile's directory; files that are not ours, or are temp files of
// another name (another program's textfile in node_exporter's
// directory), stay untouched.
func TestCrash_StateAndTextfileTempsSwept(t *testing.T) {
	bin := testutil.Binary(t, "failpoints")
	dir := t.TempDir()
	store := filepath.Join(dir, "data", "events.ndjson")
	cfg := writeCrashConfig(t, dir, store)
	textDir := filepath.Join(dir, "textfile")
	withTextfile(t, cfg, filepath.Join(textDir, "papyra.prom"))
	now := float64(time.Now().Unix())
	content := lines(backendtest.Record{Kind: "event", I: 1, Timestamp: now - 60}.JSON(), "not json",
		backendtest.Record{Kind: "event", I: 2, Timestamp: now - 30*86400}.JSON())
	if err := os.WriteFile(store, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	stateDir, targetsDir := filepath.Join(dir, "state"), filepath.Join(dir, "state", "targets")
	// Not ours, or not a temp file of a name we write: they stay.
	decoys := map[string]string{
		filepath.Join(textDir, "node.prom"):                               "x 1\n",
		filepath.Join(textDir, fsutil.Prefix+"node.prom.123.tmp"):         "another program's temp file",
		filepath.Join(textDir, fsutil.Prefix+"papyra.prom.12ab.tmp"):      "not os.CreateTemp's random part",
		filepath.Join(textDir, fsutil.Prefix+"papyra.prom.1.tmp.bak"):     "another suffix",
		filepath.Join(targetsDir, "notes.txt"):                            "someone's notes",
		filepath.Join(stateDir, fsutil.Prefix+"agent.jsonx.123.tmp"):      "another name",
		filepath.Join(targetsDir, fsutil.Prefix+"crash.json.bak.123.tmp"): "another name",
	}
	for p, c := range decoys {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ours := func() []string {
		var out []string
		for _, d := range []string{stateDir, targetsDir, textDir} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				p := filepath.Join(d, e.Name())
				if _, decoy := decoys[p]; !decoy && strings.HasPrefix(e.Name(), fsutil.Prefix) {
					out = append(out, p)
				}
			}
		}
		return out
	}
	// Every write sleeps: the k-th, once its step is in the log, is killed
	// asleep, with its temp file written.
	const spec = "state-temp-synced:sleep=2s,textfile-temp-synced:sleep=2s"
	killed := map[string]int{}
	for k := 1; ; k++ {
		fpLog := filepath.Join(t.TempDir(), "fp.log")
		run := exec.Command(bin, "run", "--config", cfg, "--no-progress")
		run.Env = append(os.Environ(), "PAPYRA_FAILPOINT="+spec, "PAPYRA_FAILPOINT_LOG="+fpLog)
		done := make(chan error, 1)
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- run.Wait() }()
		var step string
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.ExitCode() != 0 {
						t.Fatalf("run %d: %v", k, err)
					}
				}
				break wait
			case <-time.After(5 * time.Millisecond):
			}
			var agentSteps []string
			for _, s := range testutil.ReachedFailPoints(t, fpLog) {
				if strings.HasSuffix(s, "-temp-synced") {
					agentSteps = append(agentSteps, s)
				}
			}
			if len(agentSteps) >= k {
				// Asleep at its k-th write, its temp file written.
				step = agentSteps[k-1]
				_ = run.Process.Signal(syscall.SIGKILL)
				<-done
				break
			}
		}
		if step == "" {
			break // the run got past every write
		}
		killed[step]++
		if left := ours(); len(left) == 0 {
			t.Fatalf("killed at write %d (%s): no temp file left to sweep", k, step)
		}
		if k > 20 {
			t.Fatal("more than 20 writes of state and textfile in one run")
		}
	}
	if killed["state-temp-synced"] == 0 || killed["textfile-temp-synced"] == 0 {
		t.Fatalf("kills: %v, want some in a state write and some in a textfile write", killed)
	}
	if out, err := exec.Command(bin, "run", "--config", cfg, "--no-progress").CombinedOutput(); err != nil {
		t.Fatalf("the clean run failed: %v\n%s", err, out)
	}
	if left := ours(); len(left) != 0 {
		t.Errorf("temp files left after a clean run: %v", left)
	}
	for p, c := range decoys {
		if b, err := os.ReadFile(p); err != nil || string(b) != c {
			t.Errorf("%s was changed or removed: %q, %v", p, b, err)
		}
	}
	t.Logf("killed in writes of state and textfile: %v; a clean run swept every temp file", killed)
}
