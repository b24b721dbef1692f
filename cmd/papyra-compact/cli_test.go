package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// cli runs the command in-process and returns its exit code and output.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// writeConfig writes a config for a jsonl store laid from the fixture.
func writeConfig(t *testing.T, extra string) (cfg, store string) {
	t.Helper()
	dir := t.TempDir()
	store = filepath.Join(dir, "orders.jsonl")
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), store)
	cfg = filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: \"\"\ndefaults:\n  grace_period: 10ms\ntargets:\n" +
		"  - name: orders\n    kind: jsonl\n    path: " + store + "\n    retention:\n      max_age: 1d\n" + extra
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, store
}

func TestCLI_ExitCodes(t *testing.T) {
	cfg, _ := writeConfig(t, "")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("state_dir: relative\ntargets:\n  - name: a\n    kind: jsonl\n    path: /x\n    max_records: -1\n  - name: a\n    kind: nope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		code     int
		inStdout string
		inStderr []string
	}{
		{"Help", []string{"--help"}, 0, "EXIT STATUS", nil},
		{"NoCommand", nil, 2, "", []string{"usage"}},
		{"UnknownCommand", []string{"frobnicate"}, 2, "", []string{`unknown command "frobnicate"`}},
		{"Version", []string{"version"}, 0, "papyra-compact", nil},
		{"CheckOK", []string{"check", "--config", cfg}, 0, "OK, 1 target", nil},
		{"CheckBad", []string{"check", "--config", bad}, 2, "", []string{bad + ":1: state_dir", bad + ":6: targets[0].max_records", bad + ":8: targets[1]"}},
		{"CheckMissingFile", []string{"check", "--config", "/nonexistent/compact.yaml"}, 2, "", []string{"/nonexistent/compact.yaml"}},
		{"CheckMissingFileSaysSo", []string{"check", "--config", "/nonexistent/compact.yaml"}, 2, "",
			[]string{"configuration error: /nonexistent/compact.yaml does not exist\n"}},
		{"RunMissingFile", []string{"run", "--config", "/nonexistent/compact.yaml"}, 2, "",
			[]string{"configuration error: /nonexistent/compact.yaml does not exist\n"}},
		{"DaemonMissingFile", []string{"daemon", "--config", "/nonexistent/compact.yaml"}, 2, "",
			[]string{"configuration error: /nonexistent/compact.yaml does not exist\n"}},
		{"CheckUnreadableFile", []string{"check", "--config", t.TempDir()}, 2, "", []string{"cannot read: read: is a directory"}},
		{"RunUnknownTarget", []string{"run", "--config", cfg, "--target", "nope"}, 2, "", []string{`"nope"`}},
		{"RunBadFlag", []string{"run", "--frob"}, 2, "", []string{"frob"}},
		{"RunBadNow", []string{"run", "--config", cfg, "--now", "yesterday"}, 2, "", []string{"--now"}},
		{"RunNowFarAhead", []string{"run", "--config", cfg, "--now", "1e30"}, 2, "", []string{"more than a day ahead"}},
		{"RunNowBefore2001", []string{"run", "--config", cfg, "--now", "86400"}, 2, "", []string{"before 2001"}},
		{"RunBadStopGrace", []string{"run", "--config", cfg, "--stop-grace", "-1s"}, 2, "", []string{"--stop-grace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cli(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code: got %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.inStdout) {
				t.Errorf("stdout %q does not contain %q", stdout, tt.inStdout)
			}
			for _, s := range tt.inStderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr %q does not contain %q", stderr, s)
				}
			}
			// A file that is missing or unreadable is not "not valid",
			// and the reader's own wording stays out of the message.
			if strings.Contains(tt.name, "File") && (strings.Contains(stderr, "is not valid") || strings.Contains(stderr, "read config")) {
				t.Errorf("stderr %q: a file that cannot be read is not an invalid one", stderr)
			}
		})
	}
}

func TestCLI_DryRunChangesNothing(t *testing.T) {
	cfg, store := writeConfig(t, "")
	before, _ := os.ReadFile(store)
	fi, _ := os.Stat(store)
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--dry-run", "--now", "1795000000")
	if code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr)
	}
	for _, s := range []string{"orders: dry run", "records 2000 -> 980", "quarantined 20", "bytes 416379 -> 203827", "oldest kept"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("dry-run output %q lacks %q", stdout, s)
		}
	}
	after, _ := os.ReadFile(store)
	fi2, _ := os.Stat(store)
	if !bytes.Equal(before, after) || !fi.ModTime().Equal(fi2.ModTime()) {
		t.Errorf("the dry run changed the store")
	}
	dir := filepath.Dir(store)
	if q, _ := filepath.Glob(filepath.Join(dir, "q", "*", "*")); len(q) != 0 {
		t.Errorf("the dry run wrote quarantine files: %v", q)
	}
}

func TestCLI_Run(t *testing.T) {
	cfg, store := writeConfig(t, "  - name: gone\n    kind: jsonl\n    path: /nonexistent-dir/x.jsonl\n")
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000")
	if code != 0 {
		t.Fatalf("exit code %d:\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "orders: success: records 2000 -> 980") || !strings.Contains(stdout, "gone: nothing to do") {
		t.Errorf("summary lines missing:\n%s", stdout)
	}
	want, _ := os.ReadFile(testutil.Fixture(t, "jsonl/expected.max_age_seconds-86400.jsonl"))
	if got, _ := os.ReadFile(store); !bytes.Equal(got, want) {
		t.Errorf("store differs from Papyra's expected result")
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("a progress bar was drawn off a terminal: %q", stderr)
	}
}

// TestCLI_CheckRetentionWords checks that check prints an age as a duration
// (30d), however the file wrote it.
func TestCLI_CheckRetentionWords(t *testing.T) {
	for _, tt := range []struct{ retention, want string }{
		{"max_age_seconds: 2.592e+06", "max_age=30d"},
		{"max_age_seconds: 2592000", "max_age=30d"},
		{"max_age: 720h", "max_age=30d"},
		{"max_age_seconds: 5400", "max_age=1h30m"},
		{"max_age_seconds: 0.5", "max_age=500ms"},
		{"max_age_seconds: 129600\n      max_records: 7", "max_age=1d12h max_records=7"},
	} {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "compact.yaml")
		y := "targets:\n  - name: a\n    kind: jsonl\n    path: " + dir + "/a.jsonl\n    retention:\n      " + tt.retention + "\n"
		if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := cli(t, "check", "--config", cfg)
		if code != 0 || !strings.Contains(stdout, "retention: "+tt.want+"\n") || strings.Contains(stdout, "e+06") {
			t.Errorf("%s: got %d, %q %q, want retention: %s", tt.retention, code, stdout, stderr, tt.want)
		}
	}
}

// TestCLI_StoreCollisionRefused checks that check and run refuse a second
// target on the same store (here through "/./" and as another kind), exit
// 2 naming both lines, and that run leaves the store alone.
func TestCLI_StoreCollisionRefused(t *testing.T) {
	cfg, store := writeConfig(t, "")
	y, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	y = append(y, "  - name: dup\n    kind: rotating\n    path: "+filepath.Dir(store)+"/./"+filepath.Base(store)+"\n    max_bytes: 1000\n    max_files: 3\n"...)
	if err := os.WriteFile(cfg, y, 0o644); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(store)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"check"}, {"run", "--now", "1795000000"}} {
		code, stdout, stderr := cli(t, append(args, "--config", cfg)...)
		// Line 16 is the second target's path, line 11 the first's.
		if code != 2 || !strings.Contains(stderr, cfg+":16: targets[1].path: is the same file as the store of target orders (targets[0].path at line 11: ") {
			t.Errorf("%s: got exit %d, stdout %q, stderr %q; want 2 naming lines 16 and 11", args[0], code, stdout, stderr)
		}
	}
	if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
		t.Errorf("run changed the store")
	}
}
