package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
)

// logCount counts the records of a text handler's output at level with
// message msg.
func logCount(out, level, msg string) int {
	return strings.Count(out, fmt.Sprintf("level=%s msg=%q", level, msg))
}

// logLines returns the lines of a text handler's output at level with
// message msg.
func logLines(out, level, msg string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, fmt.Sprintf("level=%s msg=%q", level, msg)) {
			lines = append(lines, l)
		}
	}
	return lines
}

// fillAs leaves about left bytes free on dir's file system with a filler
// file of its own name (fill's rewrites its one filler, whose old blocks
// it counts as taken).
func fillAs(t *testing.T, dir, name string, left int64) {
	t.Helper()
	if n := avail(t, dir) - left; n > 0 {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEmergency_UnmetLoggedOnChange runs the checks the daemon runs, one
// a minute on its clock, over a file system keep_free cannot be met on:
// keep_free not met is logged at error when it becomes unmet, again only
// when the cause changes (nothing left to drop → a drop that fails) or
// as a reminder once UnmetReminderEvery has passed, "keep_free met again"
// once when it recovers, and at error again when it falls back; the
// report, the state and the metrics say it on every check.
func TestEmergency_UnmetLoggedOnChange(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	// Quarantine on the full file system: a segment of corrupt lines
	// cannot be dropped there (its lines would need more room than is
	// left), the real way a drop fails.
	cfg.QuarantineDir = filepath.Join(mnt, "q")
	cfg.Metrics.Textfile = filepath.Join(t.TempDir(), "papyra.prom")
	fill(t, mnt, 64<<10)
	unmet := &config.Amount{Percent: 90}
	cfg.Targets[1].KeepFree = unmet
	rec, err := agent.NewRecorder(cfg, all.Backends(), agent.RecorderOptions{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	a := agent.New(cfg, all.Backends(), slog.New(slog.NewTextHandler(logs, nil)))
	clock := now
	u := &agent.UnmetLog{Now: func() time.Time { return clock }}
	check := func(wantUnmet bool) agent.EmergencyFS {
		t.Helper()
		rep := a.Emergency(context.Background(), agent.EmergencyOptions{Now: now, Unmet: u})
		if len(rep.FileSystems) != 1 {
			t.Fatalf("report %+v", rep)
		}
		if err := rec.RecordEmergency(rep); err != nil {
			t.Fatal(err)
		}
		f := rep.FileSystems[0]
		if (f.Unmet != "") != wantUnmet {
			t.Fatalf("at %v: unmet %q, want unmet %v", clock.Sub(now), f.Unmet, wantUnmet)
		}
		// Every check, logged or not, is in the state and the metrics.
		st, _, err := agent.LoadTargetState(cfg.StateDir, "a")
		if err != nil || st.Emergency == nil || st.Emergency.Unmet != wantUnmet || st.Emergency.UnmetReason != f.Unmet {
			t.Fatalf("state of a after a check (unmet %v): %+v, %v", wantUnmet, st.Emergency, err)
		}
		prom, err := os.ReadFile(cfg.Metrics.Textfile)
		if err != nil {
			t.Fatal(err)
		}
		gauge := fmt.Sprintf(`papyra_compact_emergency_keep_free_unmet{backend="rotating",target="a"} %d`, map[bool]int{false: 0, true: 1}[wantUnmet])
		if !strings.Contains(string(prom), gauge) {
			t.Fatalf("textfile lacks %s", gauge)
		}
		return f
	}
	want := func(step string, errs, reminders, mets int) {
		t.Helper()
		out := logs.String()
		got := logLines(out, "ERROR", agent.MsgKeepFreeUnmet)
		gotReminders := 0
		for _, l := range got {
			if strings.Contains(l, "reminder=true") {
				gotReminders++
			}
		}
		if len(got) != errs || gotReminders != reminders || logCount(out, "INFO", agent.MsgKeepFreeMet) != mets {
			t.Fatalf("%s: %d errors %q (%d reminders), %d %q; want %d errors (%d reminders), %d met again\n%s",
				step, len(got), agent.MsgKeepFreeUnmet, gotReminders, logCount(out, "INFO", agent.MsgKeepFreeMet), agent.MsgKeepFreeMet,
				errs, reminders, mets, out)
		}
	}

	// Becomes unmet: everything that may go goes, then nothing is left.
	for range 4 {
		check(true)
		clock = clock.Add(time.Minute)
	}
	want("unmet for 4 checks", 1, 0, 0)
	if n := logCount(logs.String(), "WARN", agent.MsgEmergencyBelow); n != 1 {
		t.Errorf("%d warnings %q over 4 checks of a file system already reported unmet, want 1", n, agent.MsgEmergencyBelow)
	}
	// A check the stopping daemon cuts short says nothing: not met
	// again (it looked at nothing), not unmet.
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if rep := a.Emergency(stopped, agent.EmergencyOptions{Now: now, Unmet: u}); len(rep.FileSystems) != 1 {
		t.Fatalf("stopped check: %+v", rep)
	}
	want("a stopped check", 1, 0, 0)

	// The cause changes: an old segment of corrupt lines turns up,
	// whose drop fails.
	seg := cfg.Targets[1].Path + ".4"
	garbage := strings.Repeat(strings.Repeat("x", 99)+"\n", segmentBytes/100)
	if err := os.WriteFile(seg, []byte(garbage), 0o644); err != nil {
		t.Fatal(err)
	}
	old := now.Add(-10 * 24 * time.Hour)
	if err := os.Chtimes(seg, old, old); err != nil {
		t.Fatal(err)
	}
	fillAs(t, mnt, "filler2", 8<<10)
	if f := check(true); !strings.Contains(f.Unmet, "failed") {
		t.Fatalf("unmet %q, want the failed drop named", f.Unmet)
	}
	lastLogged := clock
	want("a drop fails", 2, 0, 0)
	if l := logLines(logs.String(), "ERROR", agent.MsgKeepFreeUnmet); !strings.Contains(l[1], "failed") {
		t.Errorf("the error of the new cause does not say it: %s", l[1])
	}
	// Another run (a compaction) holding a's lock hides a's failure from
	// a check or two: that is no new cause, neither then nor after.
	key, err := all.Backends().LockKey(cfg.Targets[1])
	if err != nil {
		t.Fatal(err)
	}
	l, err := agent.TryLock(cfg.LockDir, key, "a compaction")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		clock = clock.Add(time.Minute)
		if f := check(true); !strings.Contains(f.Unmet, "passed over") {
			t.Fatalf("unmet %q, want the locked store named", f.Unmet)
		}
	}
	l.Unlock()
	clock = clock.Add(time.Minute)
	check(true)
	want("a's lock held by another run for two checks, then released", 2, 0, 0)
	// Then nothing new until the reminder is due, not even the failed
	// drop's own error (it went to debug from the start: the file
	// system was already reported unmet, and the error of the new cause
	// carries it).
	for clock = clock.Add(time.Minute); clock.Sub(lastLogged) < agent.UnmetReminderEvery; clock = clock.Add(agent.UnmetReminderEvery / 4) {
		check(true)
	}
	want("the same failure for less than the reminder interval", 2, 0, 0)
	if n := logCount(logs.String(), "ERROR", "emergency drop failed; the store is passed over until the next check"); n > 1 {
		t.Errorf("the same failed drop logged at error %d times, want at most once", n)
	}

	// The reminder, once.
	clock = lastLogged.Add(agent.UnmetReminderEvery)
	check(true)
	want("the reminder interval passed", 3, 1, 0)
	for range 3 {
		clock = clock.Add(time.Minute)
		check(true)
	}
	want("checks after the reminder", 3, 1, 0)

	// Met again: said once.
	cfg.Targets[1].KeepFree = &config.Amount{Bytes: 1}
	for range 3 {
		clock = clock.Add(time.Minute)
		check(false)
	}
	want("met again", 3, 1, 1)
	if l := logLines(logs.String(), "INFO", agent.MsgKeepFreeMet); !strings.Contains(l[0], "unmet_since=") {
		t.Errorf("met again does not say since when it was unmet: %s", l[0])
	}

	// Unmet again: an error at once, a fresh episode.
	cfg.Targets[1].KeepFree = unmet
	clock = clock.Add(time.Minute)
	check(true)
	check(true)
	want("unmet again", 4, 1, 1)

	// A file system no longer checked (keep_free gone from its targets)
	// is forgotten: checked again, still unmet, it is logged afresh.
	cfg.Targets[1].KeepFree, cfg.Targets[2].KeepFree = nil, nil
	if rep := a.Emergency(context.Background(), agent.EmergencyOptions{Now: now, Unmet: u}); len(rep.FileSystems) != 0 {
		t.Fatalf("checked without keep_free: %+v", rep)
	}
	cfg.Targets[1].KeepFree, cfg.Targets[2].KeepFree = unmet, &config.Amount{Bytes: 1}
	clock = clock.Add(time.Minute)
	check(true)
	want("keep_free set again", 5, 1, 1)
}

// TestEmergency_UnmetEveryPass: a `run` pass is a process of its own,
// so each one logs keep_free not met, however many came before.
func TestEmergency_UnmetEveryPass(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	fill(t, mnt, 64<<10)
	cfg.Targets[1].KeepFree = &config.Amount{Percent: 90}
	logs := &syncBuffer{}
	// One agent for all: even then a pass remembers nothing.
	a := agent.New(cfg, all.Backends(), slog.New(slog.NewTextHandler(logs, nil)))
	for i := 1; i <= 3; i++ {
		var rep agent.EmergencyReport
		_, err := a.RunOnce(context.Background(), agent.Options{
			Targets:     []string{"c"},
			OnEmergency: func(r agent.EmergencyReport) { rep = r },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.FileSystems) != 1 || rep.FileSystems[0].Unmet == "" {
			t.Fatalf("pass %d: report %+v", i, rep)
		}
		out := logs.String()
		if n := logCount(out, "ERROR", agent.MsgKeepFreeUnmet); n != i {
			t.Fatalf("after %d passes %d errors %q, want one a pass:\n%s", i, n, agent.MsgKeepFreeUnmet, out)
		}
		if n := logCount(out, "WARN", agent.MsgEmergencyBelow); n != i {
			t.Errorf("after %d passes %d warnings %q, want one a pass", i, n, agent.MsgEmergencyBelow)
		}
		if n := logCount(out, "INFO", agent.MsgKeepFreeMet); n != 0 {
			t.Errorf("a pass said %q", agent.MsgKeepFreeMet)
		}
	}
}

// TestEmergency_DaemonLogsUnmetOnce runs the real daemon, checking every
// 20ms, on a file system filled past what drops can free: over many
// checks, and across a reload (which builds a new agent), keep_free not
// met is logged once; freeing space logs "keep_free met again" once, and
// filling it again logs the error again. The state says unmet all along.
func TestEmergency_DaemonLogsUnmetOnce(t *testing.T) {
	mnt := smallFS(t, 1<<20+512<<10)
	now := time.Now()
	cfg := emStores(t, mnt, now)
	dir := t.TempDir()
	free := fill(t, mnt, 64<<10)
	// The six segments that may go free 6 segments; 10 are needed.
	keep := free + 10*segmentBytes
	path := writeEmDaemonConfig(t, dir, cfg, keep)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logs := &syncBuffer{}
	go func() {
		done <- agent.RunDaemon(ctx, agent.DaemonOptions{
			ConfigPath: path, Registry: all.Backends(), Logger: slog.New(slog.NewTextHandler(logs, nil)),
			StopGrace: 5 * time.Second, EmergencyEvery: 20 * time.Millisecond,
		})
	}()
	emergency := func() *agent.EmergencyState {
		st, _, err := agent.LoadTargetState(dir+"/state", "a")
		if err != nil {
			return nil
		}
		return st.Emergency
	}
	// checks waits for n more checks of a's file system, each with the
	// verdict unmet.
	checks := func(n int, unmet bool) {
		t.Helper()
		var last time.Time
		seen := 0
		eventually(t, 60*time.Second, fmt.Sprintf("%d checks (unmet %v)", n, unmet), func() bool {
			e := emergency()
			if e == nil || e.Unmet != unmet {
				return false
			}
			if !e.LastCheck.Equal(last) {
				last = e.LastCheck
				seen++
			}
			return seen > n
		})
	}
	want := func(step string, errs, mets int) {
		t.Helper()
		out := logs.String()
		if logCount(out, "ERROR", agent.MsgKeepFreeUnmet) != errs || logCount(out, "INFO", agent.MsgKeepFreeMet) != mets {
			t.Fatalf("%s: %d errors %q, %d %q; want %d, %d\n%s", step,
				logCount(out, "ERROR", agent.MsgKeepFreeUnmet), agent.MsgKeepFreeUnmet,
				logCount(out, "INFO", agent.MsgKeepFreeMet), agent.MsgKeepFreeMet, errs, mets, out)
		}
	}
	checks(10, true)
	want("unmet for 10 checks", 1, 0)
	if n := logCount(logs.String(), "WARN", agent.MsgEmergencyBelow); n != 1 {
		t.Errorf("%d warnings %q, want 1", n, agent.MsgEmergencyBelow)
	}

	// A reload builds a new agent; the daemon's memory stays.
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(text, "# reloaded\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the reload", func() bool {
		return strings.Contains(logs.String(), "generation=2")
	})
	checks(5, true)
	want("unmet across a reload", 1, 0)

	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	checks(5, false)
	want("met again", 1, 1)

	fill(t, mnt, 64<<10)
	checks(5, true)
	want("unmet again", 2, 1)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
