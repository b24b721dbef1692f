package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// TestShippedWritable_MatchesUnits keeps the built-in list `check` uses
// when no unit is installed in step with the units in the tree.
func TestShippedWritable_MatchesUnits(t *testing.T) {
	want := shippedWritable()
	slices.Sort(want)
	for _, unit := range []string{"papyra-compact.service", "papyra-compact-daemon.service"} {
		t.Run(unit, func(t *testing.T) {
			got, err := parseWritable(filepath.Join(testutil.Root(t), "units", unit), nil)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestUnitWritable(t *testing.T) {
	const unit = "papyra-compact.service"
	tests := []struct {
		name   string
		files  map[string]string
		want   []string
		source string
	}{
		{"NothingInstalled", nil, shippedWritable(), "the unit as shipped"},
		{"Installed", map[string]string{
			"usr/lib/systemd/system/" + unit: "[Service]\nStateDirectory=pc\nReadWritePaths=-/data\n",
		}, []string{"/var/lib/pc", "/data"}, "/usr/lib/systemd/system/" + unit},
		{"DropInsInNameOrder", map[string]string{
			"etc/systemd/system/" + unit + ".d/20-b.conf": "[Service]\nReadWritePaths=/b\n",
			"run/systemd/system/" + unit + ".d/10-a.conf": "[Service]\nReadWritePaths=/a /x\nBindPaths=/home/bob:/home/bob:rbind -/h\n",
		}, append(shippedWritable(), "/a", "/x", "/home/bob", "/h", "/b"), "the unit as shipped + drop-ins + drop-ins"},
		{"EmptyAssignmentResets", map[string]string{
			"etc/systemd/system/" + unit + ".d/x.conf": "[Service]\nReadWritePaths=\nReadWritePaths=/only\n# ReadWritePaths=/comment\n",
		}, []string{"/only"}, "the unit as shipped + drop-ins"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, source := unitWritable(root, unit)
			if !slices.Equal(got, tt.want) {
				t.Errorf("paths: got %v, want %v", got, tt.want)
			}
			if source != tt.source {
				t.Errorf("source: got %v, want %v", source, tt.source)
			}
		})
	}
}

// TestCheck_SandboxOtherFile: a file the units do not read (a demo, a
// draft) gets one line about the sandbox, not warnings, unless --units.
func TestCheck_SandboxOtherFile(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "draft.yaml")
	if err := os.WriteFile(cfg, []byte("targets:\n  - {name: o, kind: jsonl, path: /srv/app/o.jsonl}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "check", "--config", cfg)
	if code != 0 || strings.Contains(stdout, "warning: papyra-compact") || !strings.Contains(stdout, "add --units to check") {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 0 and a pointer to --units, no warning", code, stdout, stderr)
	}
}

func TestCheck_Sandbox(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		yaml    string
		want    []string
		notWant []string
	}{
		{"AllWritable", "targets:\n  - {name: o, kind: jsonl, path: /var/lib/papyra/o.jsonl}\n  - {name: r, kind: memory}\n",
			nil, []string{"warning: papyra-compact"}},
		{"OutsideNeedsDropIn", "targets:\n  - {name: o, kind: jsonl, path: /srv/app/o.jsonl}\n",
			[]string{
				// "from the unit as shipped", or from an installed unit file
				// when the host has the package: the paths are the same.
				"warning: papyra-compact.service (writable paths from ",
				") cannot write:\n",
				"/srv/app                                 for target o (/srv/app/o.jsonl)",
				"# /etc/systemd/system/papyra-compact.service.d/papyra-paths.conf\n    # Written by",
				"Rewritten whole each time.\n    [Service]\n    ReadWritePaths=-/srv/app\n",
				"# /etc/systemd/system/papyra-compact-daemon.service.d/papyra-paths.conf",
			}, nil},
		{"Home", "metrics:\n  textfile: /root/m/x.prom\n",
			[]string{"/root/m                                  for metrics.textfile", "ProtectHome=tmpfs\n    BindPaths=/root/m\n"},
			[]string{"ReadWritePaths"}},
		{"Tmp", "state_dir: /tmp/papyra-state\n",
			[]string{"/tmp/papyra-state: the service has its own /tmp"}, []string{"Add this drop-in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(dir, tt.name+".yaml")
			if err := os.WriteFile(cfg, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := cli(t, "check", "--units", "--config", cfg)
			if code != 0 {
				t.Fatalf("exit code: got %d, want 0 (a valid file)\n%s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("got %v, want it to contain %q", stdout, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("got %v, want no %q", stdout, w)
				}
			}
		})
	}
}
