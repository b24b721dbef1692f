package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// valveConfig writes a config whose jsonl target orders (the Papyra
// fixture: 2000 records, of which max_age 1d at --now 1795000000 removes
// 1020, 51%, and 20 corrupt lines quarantined) has valve as its
// max_remove_fraction line ("" for none). It returns the config, the
// store and the textfile.
func valveConfig(t *testing.T, valve string) (cfg, store, textfile string) {
	t.Helper()
	dir := t.TempDir()
	store = filepath.Join(dir, "orders.jsonl")
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), store)
	textfile = filepath.Join(dir, "metrics", "papyra.prom")
	cfg = filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: " + textfile + "\ndefaults:\n  grace_period: 10ms\ntargets:\n" +
		"  - name: orders\n    kind: jsonl\n    path: " + store + "\n    retention:\n      max_age: 1d\n"
	if valve != "" {
		y += "    max_remove_fraction: " + valve + "\n"
	}
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, store, textfile
}

// TestValve_JSONL runs the fixture store through the CLI with valves
// just under, at and over the 51% the run removes, with and without
// --force.
func TestValve_JSONL(t *testing.T) {
	const refusal = "would remove 51% of orders (1,020 of 2,000 records) — clock jump? config typo? rerun with --force to confirm"
	tests := []struct {
		name    string
		valve   string
		force   bool
		refused bool
	}{
		{"Off", "", false, false},
		{"Over", "0.5", false, true},
		{"OverPercent", `"50.9%"`, false, true},
		{"JustUnderRemoved", "0.5099", false, true},
		// At exactly the fraction the run goes ahead: "more than" refuses.
		{"Exactly", "0.51", false, false},
		{"ExactlyPercent", "51%", false, false},
		{"Under", "0.6", false, false},
		{"All", "1", false, false},
		{"OverForced", "0.5", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, store, textfile := valveConfig(t, tt.valve)
			before, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"run", "--config", cfg, "--now", "1795000000"}
			if tt.force {
				args = append(args, "--force")
			}
			code, stdout, stderr := cli(t, args...)
			after, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			prom, err := os.ReadFile(textfile)
			if err != nil {
				t.Fatal(err)
			}
			_, js, _ := cli(t, "status", "--config", cfg, "--json")
			if tt.refused {
				if code != 1 {
					t.Errorf("exit code: got %d, want 1\n%s\n%s", code, stdout, stderr)
				}
				if !strings.Contains(stdout, "orders: REFUSED, nothing changed: ") || !strings.Contains(stdout, refusal) {
					t.Errorf("summary does not say why:\n%s", stdout)
				}
				if !bytes.Equal(before, after) {
					t.Errorf("a refused run changed the store")
				}
				if q, _ := filepath.Glob(filepath.Join(filepath.Dir(store), "q", "*", "*")); len(q) != 0 {
					t.Errorf("a refused run wrote quarantine files: %v", q)
				}
				for _, s := range []string{`result="refused",target="orders"} 1`, `result="success",target="orders"} 0`} {
					if !bytes.Contains(prom, []byte(s)) {
						t.Errorf("textfile lacks %s:\n%s", s, prom)
					}
				}
				if !strings.Contains(js, `"result": "refused"`) {
					t.Errorf("status --json does not show the refusal:\n%s", js)
				}
				return
			}
			if code != 0 {
				t.Fatalf("exit code: got %d, want 0\n%s\n%s", code, stdout, stderr)
			}
			want, err := os.ReadFile(testutil.Fixture(t, "jsonl/expected.max_age_seconds-86400.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, want) {
				t.Errorf("store differs from Papyra's expected result")
			}
			for _, s := range []string{`result="refused",target="orders"} 0`, `result="success",target="orders"} 1`} {
				if !bytes.Contains(prom, []byte(s)) {
					t.Errorf("textfile lacks %s:\n%s", s, prom)
				}
			}
			if tt.force && !strings.Contains(stderr, "safety valve overridden by --force") {
				t.Errorf("--force past the valve is not logged:\n%s", stderr)
			}
		})
	}
}

// TestValve_ForceConfirmsOnce: --force applies to the run it is given to;
// the next run without it is judged again.
func TestValve_ForceConfirmsOnce(t *testing.T) {
	cfg, store, _ := valveConfig(t, "0.1")
	if code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000", "--force"); code != 0 {
		t.Fatalf("forced run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	// A day later every record kept is a day older: max_age 1d removes
	// them all, more than 10%.
	kept, _ := os.ReadFile(store)
	code, stdout, _ := cli(t, "run", "--config", cfg, "--now", "1795200000")
	if code != 1 || !strings.Contains(stdout, "REFUSED") {
		t.Errorf("second run without --force: exit %d, want 1 and a refusal:\n%s", code, stdout)
	}
	if after, _ := os.ReadFile(store); !bytes.Equal(kept, after) {
		t.Errorf("the refused second run changed the store")
	}
}

// TestValve_DryRunSays: a dry run is not refused but says a run would be.
func TestValve_DryRunSays(t *testing.T) {
	cfg, store, _ := valveConfig(t, "25%")
	before, _ := os.ReadFile(store)
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "a run without --force would be refused: ") || !strings.Contains(stdout, "would remove 51% of orders") {
		t.Errorf("dry run does not warn of the refusal:\n%s", stdout)
	}
	if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
		t.Errorf("the dry run changed the store")
	}
}

// TestValve_Redis applies the valve to a real redis-server's stream
// through the same contract: the plan's removal count.
func TestValve_Redis(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	const stream = "papyra:local:events"
	// 20 entries a day apart by ID: max_age 1d at --now 1795000000
	// keeps the last one or two.
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("%d-0", int64(1793300000000)+int64(i)*86_400_000)
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: id,
			Values: []any{"data", fmt.Sprintf(`{"kind": "event", "timestamp": %d.0}`, 1793300000+i*86400)}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: " + dir + "/papyra.prom\ntargets:\n" +
		"  - name: ev\n    kind: redis\n    url: redis://" + srv.Addr + "/0\n    approximate: false\n" +
		"    max_remove_fraction: 50%\n    retention:\n      max_age: 1d\n"
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000")
	if code != 1 || !strings.Contains(stdout, "ev: REFUSED") || !strings.Contains(stdout, "of ev (") {
		t.Fatalf("exit %d, want 1 and a refusal:\n%s\n%s", code, stdout, stderr)
	}
	if n := rc.XLen(ctx, stream).Val(); n != 20 {
		t.Errorf("refused run left %d entries, want all 20", n)
	}
	prom, _ := os.ReadFile(filepath.Join(dir, "papyra.prom"))
	if !bytes.Contains(prom, []byte(`result="refused",target="ev"} 1`)) {
		t.Errorf("textfile does not count the refusal:\n%s", prom)
	}
	code, stdout, stderr = cli(t, "run", "--config", cfg, "--now", "1795000000", "--force")
	if code != 0 {
		t.Fatalf("forced run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if n := rc.XLen(ctx, stream).Val(); n >= 10 {
		t.Errorf("forced run left %d entries, want the last day's", n)
	}
	t.Log(stdout)
}
