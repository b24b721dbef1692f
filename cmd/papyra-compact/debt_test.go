package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/backendtest"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// debtStatus returns the debt `status --json` shows for the only target.
func debtStatus(t *testing.T, run func(args ...string) (int, string, string), cfg string) []statusDebt {
	t.Helper()
	_, js, _ := run("status", "--config", cfg, "--json")
	var rep statusReport
	if err := json.Unmarshal([]byte(js), &rep); err != nil || len(rep.Targets) != 1 {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	return rep.Targets[0].Debt
}

// TestDebt_Reasons runs real stores into each reason the agent decides
// and checks the debt state, the textfile and status report it: a
// refusal by the safety valve owes what the plan would remove; a refusal
// by the clock guard owes an unknown amount (no records series, never a
// misleading 0, but a since for the alert); a compaction that fails
// after planning owes what it planned. A run that fails before planning
// keeps the last known debt and its since; a compaction that succeeds
// clears it.
func TestDebt_Reasons(t *testing.T) {
	inProcess := func(args ...string) (int, string, string) { return cli(t, args...) }
	t.Run("SafetyValve", func(t *testing.T) {
		cfg, store, textfile := reclaimConfig(t, "    max_remove_fraction: 0.5\n")
		if code, out, _ := cli(t, "run", "--config", cfg, "--now", "1795000000"); code != 1 {
			t.Fatalf("exit %d, want 1 (refused):\n%s", code, out)
		}
		if _, table, _ := cli(t, "status", "--config", cfg); !strings.Contains(table,
			"orders: 1,020 records (207.6 KiB) left because the safety valve (max_remove_fraction) refused the run; rerun with --force to confirm") {
			t.Errorf("status does not show the refusal's debt:\n%s", table)
		}
		wantDebt(t, textfile, "safety_valve", "1020", "212552", true)
		d := debtStatus(t, inProcess, cfg)
		if len(d) != 1 || d[0].Reason != "safety_valve" || d[0].Records == nil || *d[0].Records != 1020 {
			t.Errorf("status debt: got %+v, want 1,020 records refused by the safety valve", d)
		}
		// --force confirms: the compaction runs and the debt is paid.
		if code, out, _ := cli(t, "run", "--config", cfg, "--now", "1795000000", "--force"); code != 0 {
			t.Fatalf("forced run: exit %d\n%s", code, out)
		}
		wantDebt(t, textfile, "safety_valve", "0", "0", false)
		if d := debtStatus(t, inProcess, cfg); len(d) != 0 {
			t.Errorf("status debt after the forced run: got %+v, want none", d)
		}
		if st, _ := os.Stat(store); st.Size() >= fixtureBytes {
			t.Errorf("forced run did not compact")
		}
	})
	t.Run("ClockGuard", func(t *testing.T) {
		dir := t.TempDir()
		store := filepath.Join(dir, "mono.jsonl")
		var b bytes.Buffer
		for i := range 50 {
			// anyio.current_time(): seconds since boot.
			b.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: 1234.5 + float64(i)}.JSON() + "\n")
		}
		if err := os.WriteFile(store, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		textfile := filepath.Join(dir, "m.prom")
		cfg := filepath.Join(dir, "c.yaml")
		y := fmt.Sprintf("state_dir: %[1]s/state\nlock_dir: %[1]s/lock\nquarantine_dir: %[1]s/q\nmetrics:\n  textfile: %[2]s\ntargets:\n"+
			"  - name: mono\n    kind: jsonl\n    path: %[3]s\n    retention:\n      max_age: 1d\n", dir, textfile, store)
		if err := os.WriteFile(cfg, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, _ := cli(t, "run", "--config", cfg)
		if code != 1 || !strings.Contains(out, "not Unix time") {
			t.Fatalf("exit %d, want 1 and the clock guard's refusal:\n%s", code, out)
		}
		prom, err := os.ReadFile(textfile)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(prom, []byte(`papyra_compact_retention_debt_records{backend="jsonl",reason="clock_guard"`)) ||
			bytes.Contains(prom, []byte(`papyra_compact_retention_debt_bytes{backend="jsonl",reason="clock_guard"`)) {
			t.Errorf("textfile exports an amount for the clock guard's unknown debt:\n%s", prom)
		}
		if !bytes.Contains(prom, []byte(`papyra_compact_retention_debt_since_timestamp_seconds{backend="jsonl",reason="clock_guard",target="mono"}`)) {
			t.Errorf("textfile lacks the clock guard's debt since:\n%s", prom)
		}
		d := debtStatus(t, inProcess, cfg)
		if len(d) != 1 || d[0].Reason != "clock_guard" || d[0].Records != nil || d[0].Bytes != nil ||
			!strings.Contains(d[0].Text, "an unknown number of records left because the clock guard refused age retention") {
			t.Errorf("status debt: got %+v, want the clock guard's, amount null", d)
		}
	})
	t.Run("Incomplete", func(t *testing.T) {
		dir := t.TempDir()
		e := struct{ cfg, store, stateDir, textfile string }{filepath.Join(dir, "compact.yaml"), filepath.Join(dir, "data", "orders.jsonl"),
			filepath.Join(dir, "state"), filepath.Join(dir, "prom", "papyra_compact.prom")}
		must(t, os.MkdirAll(filepath.Dir(e.store), 0o755))
		var b bytes.Buffer
		for i := range 1000 {
			b.WriteString(backendtest.Record{Kind: "event", I: i, Timestamp: float64(backendtest.Now.Unix())}.JSON() + "\n")
		}
		must(t, os.WriteFile(e.store, b.Bytes(), 0o644))
		must(t, os.WriteFile(e.cfg, []byte(fmt.Sprintf("state_dir: %s\nlock_dir: %[2]s/lock\nquarantine_dir: %[2]s/q\nmetrics:\n  textfile: %s\n"+
			"defaults:\n  grace_period: 10ms\ntargets:\n  - name: orders\n    kind: jsonl\n    path: %s\n    retention:\n      max_records: 10\n",
			e.stateDir, dir, e.textfile, e.store)), 0o644))
		bin := testutil.Binary(t, "failpoints")
		runFP := func(fp string, args ...string) (int, string) {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=", "PAPYRA_FAILPOINT="+fp)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return code, string(out)
		}
		before, err := os.Stat(e.store)
		if err != nil {
			t.Fatal(err)
		}
		code, out := runFP("temp-created:enospc", "run", "--config", e.cfg, "--no-progress")
		if code != 1 || !strings.Contains(out, "no space left") {
			t.Fatalf("exit %d, want 1 and the injected ENOSPC:\n%s", code, out)
		}
		st, _, err := agent.LoadTargetState(e.stateDir, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Debt) != 1 || st.Debt[0].Reason != "incomplete" || st.Debt[0].Records != 990 || st.Debt[0].Bytes <= 0 || st.Debt[0].Bytes >= before.Size() {
			t.Fatalf("state debt: got %+v, want the 990 planned removals and their bytes as incomplete", st.Debt)
		}
		since := st.DebtSince["incomplete"]
		// A run that fails before planning (the store unreadable) knows
		// nothing new: the last known debt and its since stand.
		// A file where the store's directory was does it, even for root.
		must(t, os.Rename(filepath.Dir(e.store), filepath.Dir(e.store)+".away"))
		must(t, os.WriteFile(filepath.Dir(e.store), []byte("not a directory"), 0o644))
		if code, out := runFP("", "run", "--config", e.cfg, "--no-progress"); code != 1 {
			t.Fatalf("run on a broken path: exit %d, want 1\n%s", code, out)
		}
		st, _, err = agent.LoadTargetState(e.stateDir, "orders")
		if err != nil {
			t.Fatal(err)
		}
		if st.LastResult != "failure" || len(st.Debt) != 1 || st.Debt[0].Reason != "incomplete" || !st.DebtSince["incomplete"].Equal(since) {
			t.Errorf("after a failure before planning: got result %s, debt %+v since %v; want the last known debt since %v", st.LastResult, st.Debt, st.DebtSince, since)
		}
		// Put the store back: the next compaction pays the debt.
		must(t, os.Remove(filepath.Dir(e.store)))
		must(t, os.Rename(filepath.Dir(e.store)+".away", filepath.Dir(e.store)))
		if code, out := runFP("", "run", "--config", e.cfg, "--no-progress"); code != 0 {
			t.Fatalf("run: exit %d\n%s", code, out)
		}
		wantDebt(t, e.textfile, "incomplete", "0", "0", false)
	})
}

// wantDebt checks the textfile's debt series for reason: records and
// bytes ("" for absent), and whether a since is exported.
func wantDebt(t *testing.T, textfile, reason, records, bytes string, since bool) {
	t.Helper()
	prom, err := os.ReadFile(textfile)
	if err != nil {
		t.Fatal(err)
	}
	sel := func(name string) string {
		for _, l := range strings.Split(string(prom), "\n") {
			if strings.HasPrefix(l, name+"{") && strings.Contains(l, `reason="`+reason+`"`) {
				return l[strings.LastIndex(l, " ")+1:]
			}
		}
		return ""
	}
	if got := sel("papyra_compact_retention_debt_records"); got != records {
		t.Errorf("debt_records{reason=%q}: got %q, want %q\n%s", reason, got, records, prom)
	}
	if got := sel("papyra_compact_retention_debt_bytes"); got != bytes {
		t.Errorf("debt_bytes{reason=%q}: got %q, want %q\n%s", reason, got, bytes, prom)
	}
	if got := sel("papyra_compact_retention_debt_since_timestamp_seconds") != ""; got != since {
		t.Errorf("debt_since{reason=%q}: got %v, want %v\n%s", reason, got, since, prom)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestDebt_Redis runs a real redis-server's stream through the CLI: a
// consumer group that has not acknowledged what retention would remove
// is debt held by that group, in plain words in status (with the oldest
// entry it holds), per reason in the textfile, with a since that stays
// while it holds them and goes when it lets go; min_reclaim skips a trim
// that frees less, changing nothing.
func TestDebt_Redis(t *testing.T) {
	srv := testutil.StartRedis(t)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rc.Close()
	const stream = "papyra:local:events"
	// 20 entries a day apart by ID and timestamp: max_age 1d at --now
	// 1795000000 removes the first 18 or 19.
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("%d-0", int64(1793300000000)+int64(i)*86_400_000)
		must(t, rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: id,
			Values: []any{"data", fmt.Sprintf(`{"kind": "event", "timestamp": %d.0}`, 1793300000+i*86400)}}).Err())
	}
	// billing has read the first 5 and acknowledged none: it holds
	// everything from the first entry.
	must(t, rc.XGroupCreate(ctx, stream, "billing", "0").Err())
	must(t, rc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "billing", Consumer: "c", Streams: []string{stream, ">"}, Count: 5}).Err())
	dir := t.TempDir()
	cfg := filepath.Join(dir, "compact.yaml")
	textfile := filepath.Join(dir, "papyra.prom")
	writeCfg := func(extra string) {
		y := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
			"metrics:\n  textfile: " + textfile + "\ntargets:\n" +
			"  - name: ev\n    kind: redis\n    url: redis://" + srv.Addr + "/0\n    approximate: false\n" + extra +
			"    retention:\n      max_age: 1d\n"
		must(t, os.WriteFile(cfg, []byte(y), 0o644))
	}
	writeCfg("")
	inProcess := func(args ...string) (int, string, string) { return cli(t, args...) }
	var since []string
	for i := range 2 {
		if code, out, errs := cli(t, "run", "--config", cfg, "--now", "1795000000"); code != 0 {
			t.Fatalf("run %d: exit %d\n%s\n%s", i, code, out, errs)
		}
		prom, err := os.ReadFile(textfile)
		must(t, err)
		since = append(since, promLine(t, prom, `papyra_compact_retention_debt_since_timestamp_seconds{backend="redis",reason="held_by_group",target="ev"}`))
	}
	if since[0] == "" || since[0] != since[1] {
		t.Errorf("held_by_group since over two runs: got %q, want the first run's start twice", since)
	}
	if n := rc.XLen(ctx, stream).Val(); n != 20 {
		t.Fatalf("the group's entries were trimmed: %d left", n)
	}
	d := debtStatus(t, inProcess, cfg)
	if len(d) != 1 || d[0].Reason != "held_by_group" || d[0].Records == nil || *d[0].Records < 18 || d[0].Bytes != nil || d[0].Oldest == nil ||
		d[0].Oldest.Unix() != 1793300000+86400 || !strings.Contains(d[0].Text, "policy cannot be met: group billing of papyra:local:events holds ") ||
		!strings.Contains(d[0].Text, " entries since 2026-10-") {
		t.Errorf("status debt: got %+v", d)
	}
	_, table, _ := cli(t, "status", "--config", cfg)
	if !strings.Contains(table, "ev: policy cannot be met: group billing of papyra:local:events holds ") {
		t.Errorf("status table lacks the debt:\n%s", table)
	}
	wantDebt(t, textfile, "held_by_group", fmt.Sprint(*d[0].Records), "", true)
	wantDebt(t, textfile, "approximate_trim", "0", "0", false)

	// billing lets go: the next run trims, and the debt is paid.
	must(t, rc.XGroupDestroy(ctx, stream, "billing").Err())
	// With a threshold above what the trim frees, the run is skipped.
	writeCfg("    min_reclaim: 1G\n")
	code, out, errs := cli(t, "run", "--config", cfg, "--now", "1795000000")
	if code != 0 || !strings.Contains(out, "compaction skipped below min_reclaim") {
		t.Fatalf("exit %d, want a skip:\n%s\n%s", code, out, errs)
	}
	if n := rc.XLen(ctx, stream).Val(); n != 20 {
		t.Errorf("a skipped run trimmed: %d left", n)
	}
	wantDebt(t, textfile, "held_by_group", "0", "0", false)
	if d := debtStatus(t, inProcess, cfg); len(d) != 1 || d[0].Reason != "below_min_reclaim" || d[0].Records == nil || *d[0].Records < 18 {
		t.Errorf("status debt after the skip: got %+v, want the trim below min_reclaim", d)
	}
	writeCfg("")
	if code, out, errs := cli(t, "run", "--config", cfg, "--now", "1795000000"); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	if n := rc.XLen(ctx, stream).Val(); n > 2 {
		t.Errorf("%d entries left, want the last day's", n)
	}
	if d := debtStatus(t, inProcess, cfg); len(d) != 0 {
		t.Errorf("status debt after the trim: got %+v, want none", d)
	}
	wantDebt(t, textfile, "below_min_reclaim", "0", "0", false)
}
