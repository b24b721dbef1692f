package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// The Papyra fixture store at --now 1795000000 with max_age 1d: 416,379
// bytes, of which the compaction frees 212,552 (1,020 records removed, 20
// corrupt lines quarantined).
const (
	fixtureBytes   = 416379
	fixtureReclaim = 212552
)

// reclaimConfig writes a config whose jsonl target orders is the Papyra
// fixture with extra as more lines of the target ("" for none).
func reclaimConfig(t *testing.T, extra string) (cfg, store, textfile string) {
	t.Helper()
	dir := t.TempDir()
	store = filepath.Join(dir, "orders.jsonl")
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), store)
	textfile = filepath.Join(dir, "metrics", "papyra.prom")
	cfg = filepath.Join(dir, "compact.yaml")
	y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: " + textfile + "\ndefaults:\n  grace_period: 10ms\ntargets:\n" +
		"  - name: orders\n    kind: jsonl\n    path: " + store + "\n    retention:\n      max_age: 1d\n" + extra
	if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, store, textfile
}

// TestMinReclaim_JSONL runs the fixture store with thresholds just under,
// at and over what the compaction frees, in bytes and in percent of the
// store: a compaction that frees less than min_reclaim is skipped (a
// success that changes nothing), reported as debt with its reason in the
// summary, the textfile and status; one that frees at least as much runs
// as without it.
func TestMinReclaim_JSONL(t *testing.T) {
	tests := []struct {
		name string
		line string
		skip bool
	}{
		{"Unset", "", false},
		{"Zero", "min_reclaim: 0", false},
		{"ZeroPercent", `min_reclaim: "0%"`, false},
		{"JustUnder", "min_reclaim: 212551", false},
		// Freeing exactly the threshold is not freeing less: it runs.
		{"Exactly", "min_reclaim: 212552", false},
		{"JustOver", "min_reclaim: 212553", true},
		{"Unit", "min_reclaim: 1MiB", true},
		{"PercentUnder", `min_reclaim: "51%"`, false},   // 212,354 bytes
		{"PercentOver", `min_reclaim: "51.1%"`, true},   // 212,770 bytes
		{"PercentHuge", `min_reclaim: "99.9%"`, true},   // most of the store
		{"UnderDecimal", "min_reclaim: 200k", false},    // 200,000 bytes
		{"OverDecimal", "min_reclaim: 0.3M", true},      // 300,000 bytes
		{"PercentTiny", `min_reclaim: "0.001%"`, false}, // 5 bytes
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra := ""
			if tt.line != "" {
				extra = "    " + tt.line + "\n"
			}
			cfg, store, textfile := reclaimConfig(t, extra)
			before, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			// The dry run says what the run will do.
			_, dry, _ := cli(t, "run", "--config", cfg, "--now", "1795000000", "--dry-run")
			if got := strings.Contains(dry, "a run would skip the compaction below min_reclaim"); got != tt.skip {
				t.Errorf("dry run says it would skip: got %v, want %v\n%s", got, tt.skip, dry)
			}
			code, stdout, stderr := cli(t, "run", "--config", cfg, "--now", "1795000000")
			if code != 0 {
				t.Fatalf("exit code: got %d, want 0 (a skip is a success)\n%s\n%s", code, stdout, stderr)
			}
			after, err := os.ReadFile(store)
			if err != nil {
				t.Fatal(err)
			}
			prom, err := os.ReadFile(textfile)
			if err != nil {
				t.Fatal(err)
			}
			_, js, _ := cli(t, "status", "--config", cfg, "--json")
			var rep statusReport
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				t.Fatalf("status --json: %v\n%s", err, js)
			}
			row := rep.Targets[0]
			_, table, _ := cli(t, "status", "--config", cfg)
			wantProm := []string{`result="success",target="orders"} 1`}
			if tt.skip {
				if !bytes.Equal(before, after) {
					t.Errorf("a skipped compaction changed the store")
				}
				if q, _ := filepath.Glob(filepath.Join(filepath.Dir(store), "q", "*", "*")); len(q) != 0 {
					t.Errorf("a skipped compaction wrote quarantine files: %v", q)
				}
				for _, s := range []string{"orders: success: records 2000 -> 2000 (removed 0", "compaction skipped below min_reclaim, store unchanged",
					"retention debt: 1,020 records (207.6 KiB) left because the compaction was skipped below min_reclaim: it would free 207.6 KiB, below min_reclaim"} {
					if !strings.Contains(stdout, s) {
						t.Errorf("summary lacks %q:\n%s", s, stdout)
					}
				}
				wantProm = append(wantProm,
					`papyra_compact_retention_debt_records{backend="jsonl",reason="below_min_reclaim",target="orders"} 1020`,
					`papyra_compact_retention_debt_bytes{backend="jsonl",reason="below_min_reclaim",target="orders"} 212552`,
					`papyra_compact_retention_debt_since_timestamp_seconds{backend="jsonl",reason="below_min_reclaim",target="orders"}`,
					`papyra_compact_records_removed_total{backend="jsonl",reason="age",target="orders"} 0`,
					`papyra_compact_reclaimed_bytes_total{backend="jsonl",target="orders"} 0`,
					`papyra_compact_store_size_bytes{backend="jsonl",target="orders"} 416379`)
				if len(row.Debt) != 1 || row.Debt[0].Reason != "below_min_reclaim" || row.Debt[0].Records == nil || *row.Debt[0].Records != 1020 ||
					row.Debt[0].Bytes == nil || *row.Debt[0].Bytes != fixtureReclaim || row.Debt[0].Since == nil {
					t.Errorf("status --json debt: got %+v, want 1,020 records below min_reclaim", row.Debt)
				}
				if !strings.Contains(table, "orders: 1,020 records (207.6 KiB) left because the compaction was skipped below min_reclaim") {
					t.Errorf("status does not show the debt:\n%s", table)
				}
			} else {
				want, err := os.ReadFile(testutil.Fixture(t, "jsonl/expected.max_age_seconds-86400.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(after, want) {
					t.Errorf("store differs from Papyra's expected result")
				}
				if strings.Contains(stdout, "min_reclaim") {
					t.Errorf("summary of a compaction that ran mentions min_reclaim:\n%s", stdout)
				}
				wantProm = append(wantProm,
					`papyra_compact_retention_debt_records{backend="jsonl",reason="below_min_reclaim",target="orders"} 0`,
					`papyra_compact_records_removed_total{backend="jsonl",reason="age",target="orders"} 1020`)
				if row.Debt == nil || len(row.Debt) != 0 {
					t.Errorf("status --json debt: got %+v, want [] (measured, none)", row.Debt)
				}
				if strings.Contains(table, "retention debt") {
					t.Errorf("status shows debt where there is none:\n%s", table)
				}
				if bytes.Contains(prom, []byte("retention_debt_since")) {
					t.Errorf("textfile exports a debt since without debt:\n%s", prom)
				}
			}
			for _, s := range wantProm {
				if !bytes.Contains(prom, []byte(s)) {
					t.Errorf("textfile lacks %s:\n%s", s, prom)
				}
			}
		})
	}
}

// TestMinReclaim_PaidLater: debt skipped below min_reclaim stays (its
// since unchanged) while runs keep skipping, and is paid by the first
// compaction worth its rewrite, which clears it.
func TestMinReclaim_PaidLater(t *testing.T) {
	cfg, store, textfile := reclaimConfig(t, "    min_reclaim: \"51.1%\"\n")
	var since []string
	for i := range 2 {
		if code, out, errs := cli(t, "run", "--config", cfg, "--now", "1795000000"); code != 0 || !strings.Contains(out, "compaction skipped") {
			t.Fatalf("run %d: exit %d, want a skip\n%s\n%s", i, code, out, errs)
		}
		prom, err := os.ReadFile(textfile)
		if err != nil {
			t.Fatal(err)
		}
		since = append(since, promLine(t, prom, `papyra_compact_retention_debt_since_timestamp_seconds{backend="jsonl",reason="below_min_reclaim",target="orders"}`))
	}
	if since[0] == "" || since[0] != since[1] {
		t.Errorf("debt since after two skips: got %q, want the first run's start twice", since)
	}
	// A later now expires more: the compaction is worth it and runs.
	code, out, errs := cli(t, "run", "--config", cfg, "--now", "1795200000")
	if code != 0 || strings.Contains(out, "skipped") {
		t.Fatalf("third run: exit %d, want a compaction\n%s\n%s", code, out, errs)
	}
	if st, err := os.Stat(store); err != nil || st.Size() >= fixtureBytes {
		t.Errorf("the store was not compacted: %v %v", st, err)
	}
	prom, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(prom, []byte("retention_debt_since")) {
		t.Errorf("debt not cleared by the compaction:\n%s", prom)
	}
	if !bytes.Contains(prom, []byte(`papyra_compact_retention_debt_records{backend="jsonl",reason="below_min_reclaim",target="orders"} 0`)) {
		t.Errorf("debt gauge not back at 0:\n%s", prom)
	}
}

// promLine returns the value of the series named by prefix in prom, ""
// when absent.
func promLine(t *testing.T, prom []byte, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(string(prom), "\n") {
		if v, ok := strings.CutPrefix(l, prefix+" "); ok {
			return v
		}
	}
	return ""
}

// TestMinReclaim_Rotating: on Papyra's rotating store the skip is whole:
// no segment is dropped, rewritten or touched (same inode, same bytes),
// and what max_records would remove is owed below min_reclaim; a
// threshold the compaction meets compacts as without it.
func TestMinReclaim_Rotating(t *testing.T) {
	segments := []string{"store.log.7", "store.log.6", "store.log.5", "store.log.4", "store.log.3", "store.log.2", "store.log.1", "store.log"}
	for _, tt := range []struct {
		name string
		min  string
		skip bool
	}{{"Skipped", `"90%"`, true}, {"Met", "1KiB", false}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			must(t, os.Mkdir(data, 0o755))
			before := map[string]string{}
			for _, s := range segments {
				testutil.CopyFile(t, testutil.Fixture(t, "rotating/"+s), filepath.Join(data, s))
				b, err := os.ReadFile(filepath.Join(data, s))
				must(t, err)
				st, err := os.Stat(filepath.Join(data, s))
				must(t, err)
				before[s] = fmt.Sprint(inodeOf(st), string(b))
			}
			cfg := filepath.Join(dir, "compact.yaml")
			must(t, os.WriteFile(cfg, []byte("state_dir: "+dir+"/state\nlock_dir: "+dir+"/lock\nquarantine_dir: "+dir+"/q\n"+
				"metrics:\n  textfile: "+dir+"/m.prom\ndefaults:\n  grace_period: 10ms\ntargets:\n"+
				"  - name: audit\n    kind: rotating\n    path: "+data+"/store.log\n    max_bytes: 40000\n    max_files: 8\n"+
				"    min_reclaim: "+tt.min+"\n    retention:\n      max_records: 700\n"), 0o644))
			code, out, errs := cli(t, "run", "--config", cfg)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errs)
			}
			changed := 0
			for _, s := range segments {
				st, err := os.Stat(filepath.Join(data, s))
				if err != nil {
					changed++
					continue
				}
				b, err := os.ReadFile(filepath.Join(data, s))
				must(t, err)
				if fmt.Sprint(inodeOf(st), string(b)) != before[s] {
					changed++
				}
			}
			_, js, _ := cli(t, "status", "--config", cfg, "--json")
			var rep statusReport
			must(t, json.Unmarshal([]byte(js), &rep))
			debt := rep.Targets[0].Debt
			if tt.skip {
				if changed != 0 || !strings.Contains(out, "segments dropped 0, rewritten 0, untouched 8") || !strings.Contains(out, "compaction skipped below min_reclaim") {
					t.Errorf("skip changed %d segments:\n%s", changed, out)
				}
				if len(debt) != 1 || debt[0].Reason != "below_min_reclaim" || debt[0].Records == nil || *debt[0].Records <= 0 {
					t.Errorf("status debt: got %+v, want max_records' removals below min_reclaim", debt)
				}
				return
			}
			want, err := os.ReadFile(testutil.Fixture(t, "rotating/expected.max_records-700.jsonl"))
			must(t, err)
			var got []byte
			for _, s := range segments {
				b, err := os.ReadFile(filepath.Join(data, s))
				if err == nil {
					got = append(got, b...)
				}
			}
			if changed == 0 || !bytes.Equal(got, want) || len(debt) != 0 {
				t.Errorf("compaction: %d segments changed, survivors as Papyra's %v, debt %+v\n%s", changed, bytes.Equal(got, want), debt, out)
			}
		})
	}
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
