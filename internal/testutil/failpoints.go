package testutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FailPoints lists the named steps (failpoint.Inject calls) of each part
// of the program, in the order a run reaches them. Each crash test kills
// or pauses its part's run at every one of them; TestFailPointsMatchSource
// checks that together they are exactly the Inject calls in the source,
// wherever those live.
var FailPoints = map[string][]string{
	"jsonl": {
		"temp-created", "survivors-written", "temp-synced", "quarantine-synced",
		"before-rename", "after-rename", "dir-synced", "drain-appended", "drained",
	},
	"rotating": {
		"rotating-anchored", "rotating-temps-written", "rotating-prepared", "rotating-swapped", "rotating-dropped",
		"rotating-slot", "rotating-self-rotated", "rotating-active-recorded", "rotating-active-swapped",
		"rotating-drain-appended", "rotating-drained", "rotating-unfrozen",
	},
	// The agent's steps are on every part's path (a run records its state
	// and textfile whatever it compacts): FailPointTally.Check allows them.
	"agent": {"scheduler-loop", "state-temp-synced", "textfile-temp-synced"},
}

var injectCall = regexp.MustCompile(`\bInject\("([^"]+)"\)`)

// SourceFailPoints returns every step name passed to Inject in the
// module's non-test Go files, with the files that name it.
func SourceFailPoints(t testing.TB) map[string][]string {
	t.Helper()
	root := Root(t)
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range injectCall.FindAllStringSubmatch(string(data), -1) {
			out[m[1]] = append(out[m[1]], rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// CrashKills is the number of kills PAPYRA_CRASH_KILLS asks for, def when
// it is unset. Anything but a positive decimal number fails the test: a
// typo must not turn into a run of zero kills that passes.
func CrashKills(t testing.TB, def int) int {
	t.Helper()
	s := os.Getenv("PAPYRA_CRASH_KILLS")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("PAPYRA_CRASH_KILLS=%q: want a positive number of kills", s)
	}
	return n
}

// CrashSeed is the seed of a crash test's random choices: PAPYRA_CRASH_SEED
// when set (to replay a failure), else the clock. It is logged either way.
func CrashSeed(t testing.TB) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("PAPYRA_CRASH_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("PAPYRA_CRASH_SEED=%q: want an unsigned decimal number", s)
		}
	}
	t.Logf("random seed %d (replay with PAPYRA_CRASH_SEED=%d)", seed, seed)
	return seed
}

// ReachedFailPoints reads a PAPYRA_FAILPOINT_LOG file: the steps a run
// reached, in order. A missing file is an empty list.
func ReachedFailPoints(t testing.TB, log string) []string {
	t.Helper()
	data, err := os.ReadFile(log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// FailPointTally records which named steps a crash test's runs reached
// and at which ones a configured action (kill, sleep, wait) fired.
type FailPointTally struct {
	Reached, Fired map[string]int
}

// Add counts one run: the steps in its log, and which of them its
// PAPYRA_FAILPOINT value configured.
func (c *FailPointTally) Add(t testing.TB, log, spec string) {
	t.Helper()
	if c.Reached == nil {
		c.Reached, c.Fired = map[string]int{}, map[string]int{}
	}
	var configured []string
	for _, s := range strings.Split(spec, ",") {
		if name, _, _ := strings.Cut(s, ":"); name != "" {
			configured = append(configured, name)
		}
	}
	for _, name := range ReachedFailPoints(t, log) {
		c.Reached[name]++
		if slices.Contains(configured, name) {
			c.Fired[name]++
		}
	}
}

// Check fails t unless every step of want fired at least once, and no
// step outside want was reached (a new Inject call on this path that the
// list, and so the harness, does not know).
func (c *FailPointTally) Check(t testing.TB, want []string) {
	t.Helper()
	for _, name := range want {
		if c.Fired[name] == 0 {
			t.Errorf("fail point %q never fired (reached %d times): the harness did not test that step", name, c.Reached[name])
		}
	}
	for name := range c.Reached {
		if !slices.Contains(want, name) && !slices.Contains(FailPoints["agent"], name) {
			t.Errorf("runs reached fail point %q, which this test's list does not name", name)
		}
	}
}

// Pauses drives the "wait" fail points of one run. In a PAPYRA_FAILPOINT
// spec, an action "wait" (without a path) holds the run at that step; at
// each such step, in the order given, Drive calls slip (where a test
// writes what a writer would write at that moment) and then lets the run
// go on.
type Pauses struct {
	Spec  string   // the spec with each bare "wait" given its file
	steps []string // the waiting steps, in order
	files []string
	log   string
}

// NewPauses rewrites spec's bare "wait" actions to files of a new
// directory (a test's own may have a comma in its name, which the spec
// cannot hold); log is the run's PAPYRA_FAILPOINT_LOG.
func NewPauses(t testing.TB, spec, log string) *Pauses {
	t.Helper()
	dir, err := os.MkdirTemp("", "papyra-pause-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p := &Pauses{log: log}
	parts := strings.Split(spec, ",")
	for i, s := range parts {
		name, action, _ := strings.Cut(s, ":")
		if action != "wait" {
			continue
		}
		f := filepath.Join(dir, "go-"+name)
		parts[i] = name + ":wait=" + f
		p.steps, p.files = append(p.steps, name), append(p.files, f)
	}
	p.Spec = strings.Join(parts, ",")
	return p
}

// Drive waits for each waiting step in turn (until done is closed), calls
// slip(step) and releases the run. It returns the steps it released.
func (p *Pauses) Drive(t testing.TB, done <-chan struct{}, slip func(step string)) []string {
	var released []string
	for i, step := range p.steps {
		for !slices.Contains(ReachedFailPoints(t, p.log), step) {
			select {
			case <-done:
				return released
			case <-time.After(time.Millisecond):
			}
		}
		slip(step)
		if err := os.WriteFile(p.files[i], nil, 0o644); err != nil {
			t.Error(err)
			return released
		}
		released = append(released, step)
	}
	return released
}
