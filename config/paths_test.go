package config_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/config"
)

// pathsConfig returns a configuration whose line 1 is state_dir, 2
// lock_dir, 3 quarantine_dir, 5 metrics.textfile and 7, 8, … the targets,
// one flow mapping a line. "{D}" stands for the test's directory.
func pathsConfig(state, lock, quarantine, textfile string, targets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s\nlock_dir: %s\nquarantine_dir: %s\nmetrics:\n  textfile: %q\ntargets:\n", state, lock, quarantine, textfile)
	for _, t := range targets {
		b.WriteString("  - " + t + "\n")
	}
	return b.String()
}

// Flow-mapping targets for pathsConfig.
func jsonlAt(name, path string) string {
	return fmt.Sprintf("{name: %s, kind: jsonl, path: %q}", name, path)
}

func rotatingAt(name, path string) string {
	return fmt.Sprintf("{name: %s, kind: rotating, path: %q, max_bytes: 1000, max_files: 3}", name, path)
}

// TestParse_PathCollisions checks the class "a generated file on top of a
// store, or two targets on one store": every way two configured paths can
// be one file (same text, a symlink on the file or a directory above it,
// "/./", "..", a hardlink) and every way a generated file or directory can
// land in a rotating store's family, each refused at the later line,
// naming the earlier; and look-alikes that are not the same file accepted.
func TestParse_PathCollisions(t *testing.T) {
	const (
		state = "{D}/state"
		lock  = "{D}/lock"
		q     = "{D}/q"
		tf    = "{D}/metrics/papyra.prom"
	)
	type setup func(t *testing.T, d string)
	// files creates each file (and its directory) under d.
	files := func(names ...string) setup {
		return func(t *testing.T, d string) {
			for _, n := range names {
				p := filepath.Join(d, n)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("{}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	symlink := func(target, name string) setup {
		return func(t *testing.T, d string) {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(d, name)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(strings.ReplaceAll(target, "{D}", d), filepath.Join(d, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	hardlink := func(existing, name string) setup {
		return func(t *testing.T, d string) {
			if err := os.Link(filepath.Join(d, existing), filepath.Join(d, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	mkdir := func(names ...string) setup {
		return func(t *testing.T, d string) {
			for _, n := range names {
				if err := os.MkdirAll(filepath.Join(d, n), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	tests := []struct {
		name  string
		setup []setup
		yaml  string
		// line and field of the one problem, and the line the message
		// names; line 0 means the file is accepted.
		line      int
		field     string
		otherLine int
	}{
		// metrics.textfile (line 5) on a store (line 7).
		{"TextfileIsStore", []setup{files("s.jsonl")},
			pathsConfig(state, lock, q, "{D}/s.jsonl", jsonlAt("a", "{D}/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileIsStoreNotCreatedYet", nil,
			pathsConfig(state, lock, q, "{D}/s.jsonl", jsonlAt("a", "{D}/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileViaSymlinkToStore", []setup{files("s.jsonl"), symlink("{D}/s.jsonl", "metrics/papyra.prom")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileViaRelativeSymlink", []setup{files("s.jsonl"), symlink("../s.jsonl", "metrics/papyra.prom")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileViaSymlinkedDirectory", []setup{files("data/s.jsonl"), symlink("{D}/data", "m")},
			pathsConfig(state, lock, q, "{D}/m/s.jsonl", jsonlAt("a", "{D}/data/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileViaSymlinkedDirectoryStoreNotCreatedYet", []setup{mkdir("data"), symlink("data", "m")},
			pathsConfig(state, lock, q, "{D}/m/s.jsonl", jsonlAt("a", "{D}/data/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileSlashDot", nil,
			pathsConfig(state, lock, q, "{D}/./data//s.jsonl", jsonlAt("a", "{D}/data/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileHardlinkOfStore", []setup{files("s.jsonl", "metrics/x"), hardlink("s.jsonl", "metrics/papyra.prom")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl")), 5, "metrics.textfile", 7},
		// ".." applies to where a symlink led, as the kernel does:
		// {D}/l/.. is {D}/x when l points to {D}/x/y.
		{"TextfileDotDotAfterSymlink", []setup{mkdir("x/y"), symlink("{D}/x/y", "l")},
			pathsConfig(state, lock, q, "{D}/l/../s.jsonl", jsonlAt("a", "{D}/x/s.jsonl")), 5, "metrics.textfile", 7},
		{"TextfileRotatingSegment", nil,
			pathsConfig(state, lock, q, "{D}/app.log.1", rotatingAt("a", "{D}/app.log")), 5, "metrics.textfile", 7},
		{"TextfileNamedLikeRotatingStore", nil,
			pathsConfig(state, lock, q, "{D}/app.log.prom", rotatingAt("a", "{D}/app.log")), 5, "metrics.textfile", 7},
		{"TextfileHardlinkOfSegment", []setup{files("app.log", "app.log.2", "metrics/x"), hardlink("app.log.2", "metrics/papyra.prom")},
			pathsConfig(state, lock, q, tf, rotatingAt("a", "{D}/app.log")), 5, "metrics.textfile", 7},
		{"TextfileIsConfigFile", nil,
			pathsConfig(state, lock, q, "{D}/compact.yaml"), 5, "metrics.textfile", 0},
		{"TextfileIsStateFile", nil,
			pathsConfig(state, lock, q, "{D}/state/agent.json"), 5, "metrics.textfile", 0},
		{"TextfileIsPasswordFile", []setup{files("pw")},
			pathsConfig(state, lock, q, "{D}/pw", "{name: r, kind: redis, password_file: {D}/pw}"), 5, "metrics.textfile", 7},
		// Generated directories (lines 1-3).
		{"QuarantineDirNamedLikeRotatingStore", nil,
			pathsConfig(state, lock, "{D}/app.log.quarantine", tf, rotatingAt("a", "{D}/app.log")), 3, "quarantine_dir", 7},
		{"QuarantineDirAsSegment", []setup{files("app.log")},
			pathsConfig(state, lock, "{D}/app.log.1", tf, rotatingAt("a", "{D}/app.log")), 3, "quarantine_dir", 7},
		{"StateDirIsStoreDir", nil,
			pathsConfig("{D}", lock, q, tf, jsonlAt("a", "{D}/s.jsonl")), 1, "state_dir", 7},
		{"StateDirSymlinkToStoreDir", []setup{mkdir("data"), symlink("{D}/data", "state")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/data/s.jsonl")), 1, "state_dir", 7},
		{"StateDirNamedLikeRotatingStore", nil,
			pathsConfig("{D}/app.log.state", lock, q, tf, rotatingAt("a", "{D}/app.log")), 1, "state_dir", 7},
		{"LockDirIsStoreDir", nil,
			pathsConfig(state, "{D}/data", q, tf, rotatingAt("a", "{D}/data/app")), 2, "lock_dir", 7},
		{"StoreInsideQuarantine", nil,
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/q/a/s.jsonl")), 3, "quarantine_dir", 7},
		{"StoreInsideScratch", nil,
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/state/scratch/s.jsonl")), 1, "state_dir", 7},
		// Two targets (lines 7 and 8) on one store.
		{"TwoTargetsSamePath", nil,
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), jsonlAt("b", "{D}/s.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsSymlinkAlias", []setup{files("s.jsonl"), symlink("s.jsonl", "alias.jsonl")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), jsonlAt("b", "{D}/alias.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsSymlinkedDirectoryNotCreatedYet", []setup{mkdir("real"), symlink("{D}/real", "alias")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/alias/s.jsonl"), rotatingAt("b", "{D}/real/s.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsSlashDot", nil,
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), jsonlAt("b", "{D}/./s.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsDotDot", []setup{mkdir("sub")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), jsonlAt("b", "{D}/sub/../s.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsHardlink", []setup{files("s.jsonl"), hardlink("s.jsonl", "other.jsonl")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), jsonlAt("b", "{D}/other.jsonl")), 8, "targets[1].path", 7},
		{"TwoTargetsJSONLAndRotating", []setup{files("s.jsonl")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/s.jsonl"), rotatingAt("b", "{D}/s.jsonl")), 8, "targets[1].path", 7},
		{"JSONLStoreIsRotatingSegment", nil,
			pathsConfig(state, lock, q, tf, rotatingAt("a", "{D}/app.log"), jsonlAt("b", "{D}/app.log.2")), 8, "targets[1].path", 7},
		{"RotatingStoreIsSegmentOfAnother", nil,
			pathsConfig(state, lock, q, tf, rotatingAt("a", "{D}/app.log.1"), rotatingAt("b", "{D}/app.log")), 8, "targets[1].path", 7},
		// Accepted: look-alikes that are different files, and targets
		// without a path.
		{"DifferentDirectories", []setup{files("a/s.jsonl", "b/s.jsonl")},
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/a/s.jsonl"), jsonlAt("b", "{D}/b/s.jsonl")), 0, "", 0},
		{"DotDotAfterSymlinkElsewhere", []setup{mkdir("x/y"), symlink("{D}/x/y", "l")},
			pathsConfig(state, lock, q, "{D}/l/../s.jsonl", jsonlAt("a", "{D}/s.jsonl")), 0, "", 0},
		{"TextfileBesideRotatingStore", nil,
			pathsConfig(state, lock, q, "{D}/papyra.prom", rotatingAt("a", "{D}/app.log")), 0, "", 0},
		{"GeneratedDirsBesideRotatingStore", nil,
			pathsConfig("{D}/state", "{D}/lock", "{D}/quarantine", tf, rotatingAt("a", "{D}/app.log")), 0, "", 0},
		{"JSONLStoresNamedAlike", nil,
			pathsConfig(state, lock, q, tf, jsonlAt("a", "{D}/app.log"), jsonlAt("b", "{D}/app.log.1")), 0, "", 0},
		{"RedisAndMemoryTargets", nil,
			pathsConfig(state, lock, q, tf, "{name: r, kind: redis}", "{name: m, kind: memory}", "{name: r2, kind: redis, url: \"redis://localhost:6379/1\"}"), 0, "", 0},
		{"GeneratedDirsNest", nil,
			pathsConfig("{D}/state", "{D}/state", "{D}/state/quarantine", "{D}/state/papyra.prom", jsonlAt("a", "{D}/s.jsonl")), 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			for _, s := range tt.setup {
				s(t, d)
			}
			path := filepath.Join(d, "compact.yaml")
			y := strings.ReplaceAll(tt.yaml, "{D}", d)
			if err := os.WriteFile(path, []byte(y), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := config.Load(path)
			if tt.line == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error for:\n%s", err, y)
				}
				return
			}
			var fe *config.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError at line %d for:\n%s", err, tt.line, y)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != 1 {
				t.Errorf("got %d problems, want 1:\n%v", n, err)
			}
			if !errors.Is(err, config.ErrConflict) || fe.Line != tt.line || fe.Field != tt.field {
				t.Errorf("got %v (line %d, field %s), want ErrConflict at line %d, field %s", err, fe.Line, fe.Field, tt.line, tt.field)
			}
			if tt.otherLine > 0 && !strings.Contains(err.Error(), fmt.Sprintf("at line %d", tt.otherLine)) {
				t.Errorf("got %v, want it to name line %d too", err, tt.otherLine)
			}
		})
	}
}
