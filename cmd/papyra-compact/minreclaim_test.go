package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// TestMinReclaim_Rotating: on Papyra's rotating store min_reclaim judges
// the rewrites alone. Segments retention empties are dropped whatever the
// threshold (an unlink each); the segment retention would rewrite (a
// rotated boundary or the active file) is left as it is (same inode, same
// bytes) when its rewrite would free less than min_reclaim, and what it
// would remove is owed below min_reclaim; a rewrite that frees at least
// the threshold runs as without it. A plan with no drops and a rewrite
// below the threshold changes nothing, as on a JSON-lines store.
func TestMinReclaim_Rotating(t *testing.T) {
	segments := []string{"store.log.7", "store.log.6", "store.log.5", "store.log.4", "store.log.3", "store.log.2", "store.log.1", "store.log"}
	// The fixture's lines, segment by segment: every line a record.
	var lines [][]string
	var all []string
	for _, s := range segments {
		b, err := os.ReadFile(testutil.Fixture(t, "rotating/"+s))
		must(t, err)
		l := strings.SplitAfter(string(b), "\n")
		if l[len(l)-1] == "" {
			l = l[:len(l)-1]
		}
		lines = append(lines, l)
		all = append(all, l...)
	}
	// plan is what max_records n does to the fixture: the segments it
	// drops (all their records go), the one it rewrites, and how many
	// records and bytes that rewrite removes.
	plan := func(n int) (dropped []string, boundary string, recs, bytes int) {
		from := len(all) - n // index of the first kept record
		at := 0
		for i, l := range lines {
			switch {
			case at+len(l) <= from:
				dropped = append(dropped, segments[i])
			case at < from:
				boundary, recs = segments[i], from-at
				bytes = len(strings.Join(l[:recs], ""))
			}
			at += len(l)
		}
		return dropped, boundary, recs, bytes
	}
	_, _, _, free700 := plan(700)
	for _, tt := range []struct {
		name       string
		maxRecords int
		min        string
		// skipRewrite: the boundary's rewrite is below min_reclaim.
		skipRewrite bool
	}{
		{"BoundarySkipped", 700, `"90%"`, true},
		// The whole plan frees 158 KiB; only the rewrite is judged.
		{"BoundaryJustUnder", 700, fmt.Sprint(free700 + 1), true},
		{"BoundaryExactly", 700, fmt.Sprint(free700), false},
		{"Met", 700, "1KiB", false},
		{"ActiveSkipped", 100, `"90%"`, true},
		{"ActiveMet", 100, "1B", false},
		// No segment is emptied: the skip is whole, as before.
		{"NoDrops", 1400, `"90%"`, true},
		{"NoDropsMet", 1400, "1KiB", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dropped, boundary, owed, owedBytes := plan(tt.maxRecords)
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
				"    min_reclaim: "+tt.min+"\n    retention:\n      max_records: "+fmt.Sprint(tt.maxRecords)+"\n"), 0o644))
			_, dry, _ := cli(t, "run", "--config", cfg, "--dry-run")
			_, explain, _ := cli(t, "explain", "--config", cfg, "--json", "audit")
			code, out, errs := cli(t, "run", "--config", cfg)
			if code != 0 {
				t.Fatalf("exit %d\n%s\n%s", code, out, errs)
			}
			// The segments as they are now, in Papyra's read order.
			var got []byte
			var same []string
			for _, s := range segments {
				st, err := os.Stat(filepath.Join(data, s))
				if err != nil {
					continue
				}
				b, err := os.ReadFile(filepath.Join(data, s))
				must(t, err)
				got = append(got, b...)
				if fmt.Sprint(inodeOf(st), string(b)) == before[s] {
					same = append(same, s)
				}
			}
			_, js, _ := cli(t, "status", "--config", cfg, "--json")
			var rep statusReport
			must(t, json.Unmarshal([]byte(js), &rep))
			debt := rep.Targets[0].Debt
			prom, err := os.ReadFile(filepath.Join(dir, "m.prom"))
			must(t, err)
			var ex struct {
				Held []struct {
					Reason  string `json:"reason"`
					Records int64  `json:"records"`
				} `json:"held"`
			}
			must(t, json.Unmarshal([]byte(explain), &ex))
			if !tt.skipRewrite {
				// As without min_reclaim: Papyra's survivors, no debt.
				want := strings.Join(all[len(all)-tt.maxRecords:], "")
				if tt.maxRecords == 700 {
					w, err := os.ReadFile(testutil.Fixture(t, "rotating/expected.max_records-700.jsonl"))
					must(t, err)
					want = string(w)
				}
				if string(got) != want || len(debt) != 0 || strings.Contains(out, "min_reclaim") || strings.Contains(dry, "min_reclaim") || len(ex.Held) != 0 {
					t.Errorf("compaction: survivors as Papyra's %v, debt %+v, explain held %+v\n%s\n%s", string(got) == want, debt, ex.Held, dry, out)
				}
				return
			}
			// Every emptied segment is gone; every other is as it was,
			// the boundary included.
			var kept []string
			for _, s := range segments {
				if !slices.Contains(dropped, s) {
					kept = append(kept, s)
				}
			}
			if !slices.Equal(same, kept) {
				t.Errorf("segments left as they were: got %v, want %v (dropped %v, boundary %s)\n%s", same, kept, dropped, boundary, out)
			}
			if n := len(strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")); n != tt.maxRecords+owed {
				t.Errorf("records left: got %d, want %d kept and the boundary's %d owed", n, tt.maxRecords, owed)
			}
			if len(debt) != 1 || debt[0].Reason != "below_min_reclaim" || debt[0].Records == nil || *debt[0].Records != int64(owed) ||
				debt[0].Bytes == nil || *debt[0].Bytes != int64(owedBytes) {
				t.Errorf("status debt: got %+v, want the boundary's %d records (%d bytes) below min_reclaim", debt, owed, owedBytes)
			}
			if len(ex.Held) != 1 || ex.Held[0].Reason != "below_min_reclaim" || ex.Held[0].Records != int64(owed) {
				t.Errorf("explain held: got %+v, want the boundary's %d records below min_reclaim, as the run", ex.Held, owed)
			}
			removed := fmt.Sprintf(`papyra_compact_records_removed_total{backend="rotating",reason="count",target="audit"} %d`, len(all)-tt.maxRecords-owed)
			debtLine := fmt.Sprintf(`papyra_compact_retention_debt_records{backend="rotating",reason="below_min_reclaim",target="audit"} %d`, owed)
			if !bytes.Contains(prom, []byte(removed)) || !bytes.Contains(prom, []byte(debtLine)) {
				t.Errorf("textfile lacks %s or %s:\n%s", removed, debtLine, prom)
			}
			counts := fmt.Sprintf("segments dropped %d, rewritten 0, untouched %d", len(dropped), len(segments)-len(dropped))
			if !strings.Contains(out, counts) || !strings.Contains(out, fmt.Sprintf("retention debt: %s records", thousandsOf(owed))) {
				t.Errorf("summary lacks %q or the debt:\n%s", counts, out)
			}
			if len(dropped) == 0 {
				if !strings.Contains(out, "compaction skipped below min_reclaim, store unchanged") || !strings.Contains(dry, "a run would skip the compaction below min_reclaim") {
					t.Errorf("no drops: want the whole compaction skipped\n%s\n%s", dry, out)
				}
				return
			}
			if !strings.Contains(out, "rewrites skipped below min_reclaim") || !strings.Contains(out, "its rewrites would free") ||
				!strings.Contains(dry, "a run would skip the rewrites below min_reclaim") || !strings.Contains(dry, counts) {
				t.Errorf("summary or dry run does not say the rewrites were skipped and the drops done:\n%s\n%s", dry, out)
			}
		})
	}
}

// TestMinReclaim_RotatingValve: when a rotating store's rewrites are
// skipped below min_reclaim, the safety valve judges what the run does,
// the drops: a fraction between the drops' and the whole plan's lets them
// through, a lower one refuses the run (nothing changes; both the drops
// and the skipped rewrite are owed), and --force confirms the drops only.
func TestMinReclaim_RotatingValve(t *testing.T) {
	segments := []string{"store.log.7", "store.log.6", "store.log.5", "store.log.4", "store.log.3", "store.log.2", "store.log.1", "store.log"}
	// max_records 100: the seven rotated segments (1,380 records, 92%)
	// are emptied; the active file's rewrite removes its 20 oldest.
	for _, tt := range []struct {
		name     string
		fraction string
		force    bool
		code     int
		reasons  map[string]int64
	}{
		{"DropsUnderFraction", "0.925", false, 0, map[string]int64{"below_min_reclaim": 20}},
		{"Refused", "0.5", false, 1, map[string]int64{"safety_valve": 1380, "below_min_reclaim": 20}},
		{"Forced", "0.5", true, 0, map[string]int64{"below_min_reclaim": 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			must(t, os.Mkdir(data, 0o755))
			for _, s := range segments {
				testutil.CopyFile(t, testutil.Fixture(t, "rotating/"+s), filepath.Join(data, s))
			}
			active, err := os.ReadFile(filepath.Join(data, "store.log"))
			must(t, err)
			cfg := filepath.Join(dir, "compact.yaml")
			must(t, os.WriteFile(cfg, []byte("state_dir: "+dir+"/state\nlock_dir: "+dir+"/lock\nquarantine_dir: "+dir+"/q\n"+
				"defaults:\n  grace_period: 10ms\ntargets:\n"+
				"  - name: audit\n    kind: rotating\n    path: "+data+"/store.log\n    max_bytes: 40000\n    max_files: 8\n"+
				"    min_reclaim: \"90%\"\n    max_remove_fraction: "+tt.fraction+"\n    retention:\n      max_records: 100\n"), 0o644))
			args := []string{"run", "--config", cfg}
			if tt.force {
				args = append(args, "--force")
			}
			code, out, errs := cli(t, args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.code, out, errs)
			}
			left, err := filepath.Glob(filepath.Join(data, "store.log*"))
			must(t, err)
			now, err := os.ReadFile(filepath.Join(data, "store.log"))
			must(t, err)
			wantLeft := 1
			if tt.code != 0 {
				wantLeft = len(segments)
			}
			if len(left) != wantLeft || !bytes.Equal(now, active) {
				t.Errorf("segments left: got %v, want %d, the active file untouched (%v)\n%s", left, wantLeft, bytes.Equal(now, active), out)
			}
			_, js, _ := cli(t, "status", "--config", cfg, "--json")
			var rep statusReport
			must(t, json.Unmarshal([]byte(js), &rep))
			got := map[string]int64{}
			for _, d := range rep.Targets[0].Debt {
				if d.Records != nil {
					got[d.Reason] += *d.Records
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.reasons) {
				t.Errorf("debt: got %v, want %v", got, tt.reasons)
			}
		})
	}
}

// thousandsOf formats n with thousands separators, as the summary does.
func thousandsOf(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func inodeOf(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
