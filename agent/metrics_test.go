package agent_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/backends/memory"
	"github.com/papyra-compact/papyra-compact/config"
)

var update = flag.Bool("update", false, "rewrite agent/testdata/*.prom from the current output")

// t0() is the fixed clock of the golden scenarios.
func t0() time.Time { return time.Date(2026, 11, 17, 12, 0, 0, 0, time.UTC) }

func ptr[T any](v T) *T { return &v }

// metricsConfig is a configuration with one target of every kind whose
// metrics differ, all under dir.
func metricsConfig(dir string) *config.Config {
	cfg := config.Default()
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.LockDir = filepath.Join(dir, "lock")
	cfg.QuarantineDir = filepath.Join(dir, "quarantine")
	cfg.Metrics.Textfile = filepath.Join(dir, "textfile", "papyra_compact.prom")
	cfg.Defaults.Retention = &config.Retention{MaxAgeSeconds: ptr(7 * 86400.0)}
	cfg.Targets = []config.Target{
		{Name: "orders", Kind: config.KindJSONL, Path: "/data/orders.jsonl", Retention: &config.Retention{
			MaxAgeSeconds: ptr(86400.0), MaxRecords: ptr(int64(500)), MaxTotalBytes: ptr(int64(1 << 20))}},
		{Name: "audit", Kind: config.KindRotating, Path: "/data/audit.log"},
		{Name: "events", Kind: config.KindRedis},
		{Name: "broken", Kind: config.KindJSONL, Path: "/data/broken", Retention: &config.Retention{MaxRecords: ptr(int64(0))}},
		{Name: "cache", Kind: config.KindMemory},
	}
	return cfg
}

func newRecorder(t *testing.T, cfg *config.Config) *agent.Recorder {
	t.Helper()
	rec, err := agent.NewRecorder(cfg, all.Backends(), agent.RecorderOptions{Version: "v1.2.3", GoVersion: "go1.x"})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func okResult(target, kind string, at time.Time) agent.Result {
	return agent.Result{
		Target: target, Kind: kind, Outcome: agent.OutcomeOK, Started: at, Duration: 1500 * time.Millisecond,
		Stats: backends.Stats{
			RecordsBefore: 2000, RecordsAfter: 500, RemovedAge: 1020, RemovedCount: 470, RemovedBytes: 10,
			Quarantined: 20, BytesBefore: 416379, BytesAfter: 104162,
			OldestKept: unix(at) - 3600.5, HasOldest: true,
		},
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestRecorder_Golden renders each scenario's textfile and compares it
// with testdata/<name>.prom; `go test ./agent -run Golden -update`
// rewrites them. `make checkmetrics` lints the goldens with promtool.
func TestRecorder_Golden(t *testing.T) {
	// What each golden scenario records, in order.
	goldenSteps := map[string]func(t *testing.T, rec *agent.Recorder){
		// Configured targets that never ran: zero counters and the retention
		// limits, nothing else.
		"never_run": func(t *testing.T, rec *agent.Recorder) {
			must(t, rec.WriteTextfile())
		},
		// Every result, a failing target, a dry run and a lock skip after
		// a failure, a schedule, and a failed config reload after a good one.
		"runs": func(t *testing.T, rec *agent.Recorder) {
			must(t, rec.ConfigReloaded(true, t0().Add(-time.Hour)))
			must(t, rec.Record(okResult("orders", config.KindJSONL, t0())))
			must(t, rec.Record(okResult("orders", config.KindJSONL, t0().Add(time.Hour))))
			must(t, rec.Record(agent.Result{Target: "orders", Kind: config.KindJSONL, Outcome: agent.OutcomeDryRun,
				Started: t0().Add(90 * time.Minute), Duration: time.Second, Stats: okResult("", "", t0()).Stats}))
			must(t, rec.Record(agent.Result{Target: "audit", Kind: config.KindRotating, Outcome: agent.OutcomeNothingToDo,
				Started: t0(), Duration: 2 * time.Millisecond}))
			events := okResult("events", config.KindRedis, t0())
			events.Stats.Stream = &backends.StreamStats{HeldBack: []backends.HeldBack{
				{Stream: "papyra:local:events", Group: "billing", Entries: 120},
				{Stream: "papyra:local:audits", Group: "archiver", Entries: 7},
			}}
			must(t, rec.Record(events))
			audit := okResult("audit", config.KindRotating, t0().Add(time.Hour))
			audit.Stats.Segments = &backends.SegmentStats{Dropped: 3, Rewritten: 1, Untouched: 4}
			must(t, rec.Record(audit))
			must(t, rec.Record(agent.Result{Target: "broken", Kind: config.KindJSONL, Outcome: agent.OutcomeFailed,
				Started: t0().Add(time.Minute), Duration: 3 * time.Millisecond, Err: errors.New("store /data/broken is not a regular file")}))
			must(t, rec.Record(agent.Result{Target: "broken", Kind: config.KindJSONL, Outcome: agent.OutcomeLocked,
				Started: t0().Add(2 * time.Minute), Duration: time.Millisecond, Err: backends.ErrLocked}))
			must(t, rec.Record(agent.Result{Target: "cache", Kind: config.KindMemory, Outcome: agent.OutcomeOK,
				Started: t0(), Duration: 20 * time.Microsecond}))
			must(t, rec.Scheduled(agent.Schedule{Target: "orders", Next: t0().Add(2 * time.Hour), Interval: time.Hour, Lateness: 90 * time.Second}))
			must(t, rec.ConfigReloaded(false, t0().Add(3*time.Hour)))
		},
		// Retention debt: a consumer group holding entries run after run
		// (its since stays at the first run), a skip below min_reclaim
		// that a later compaction pays, a clock guard refusal of unknown
		// amount, and a failure before planning that keeps the last known
		// debt.
		"debt": func(t *testing.T, rec *agent.Recorder) {
			for i := range 3 {
				events := okResult("events", config.KindRedis, t0().Add(time.Duration(i)*time.Hour))
				events.Stats.Stream = &backends.StreamStats{HeldBack: []backends.HeldBack{{Stream: "papyra:local:events", Group: "billing", Entries: 1204}}}
				events.Stats.Debt = []backends.Debt{
					{Reason: backends.DebtHeldByGroup, Detail: "group billing of papyra:local:events", Records: 1204, Bytes: -1, Oldest: unix(t0()) - 86400, HasOldest: true},
					{Reason: backends.DebtApproximate, Detail: "papyra:local:events", Records: int64(40 - 20*i), Bytes: -1},
				}
				must(t, rec.Record(events))
			}
			orders := okResult("orders", config.KindJSONL, t0())
			orders.Stats.Debt = []backends.Debt{{Reason: backends.DebtBelowMinReclaim, Records: 300, Bytes: 65536}}
			must(t, rec.Record(orders))
			must(t, rec.Record(okResult("orders", config.KindJSONL, t0().Add(time.Hour))))
			must(t, rec.Record(agent.Result{Target: "audit", Kind: config.KindRotating, Outcome: agent.OutcomeFailed, DebtKnown: true,
				Started: t0(), Duration: time.Millisecond, Err: errors.New("refused: unsafe to compact: age retention on /data/audit.log"),
				Stats: backends.Stats{Debt: []backends.Debt{{Reason: backends.DebtClockGuard, Records: -1, Bytes: -1}}}}))
			must(t, rec.Record(agent.Result{Target: "audit", Kind: config.KindRotating, Outcome: agent.OutcomeFailed,
				Started: t0().Add(time.Hour), Duration: time.Millisecond, Err: errors.New("open /data: permission denied")}))
		},
		// Emergency free space: the rotating target opted in (keep_free);
		// a check that found enough free, then one that dropped two
		// segments and still could not meet keep_free.
		"emergency": func(t *testing.T, rec *agent.Recorder) {
			must(t, rec.Record(okResult("audit", config.KindRotating, t0())))
			fs := agent.EmergencyFS{Targets: []string{"audit"}, Size: 100 << 30, KeepFree: 5 << 30, FreeBefore: 8 << 30, FreeAfter: 8 << 30}
			must(t, rec.RecordEmergency(agent.EmergencyReport{At: t0().Add(time.Minute), FileSystems: []agent.EmergencyFS{fs}}))
			fs.FreeBefore, fs.FreeAfter = 1<<30, 3<<30
			fs.Unmet = "3221225472 bytes free, keep_free 5368709120; left: 1 segments (1073741824 bytes) holding records younger than min_keep"
			for i, ts := range []float64{unix(t0()) - 9*86400, unix(t0()) - 8*86400} {
				fs.Drops = append(fs.Drops, agent.EmergencyDrop{Target: "audit", Kind: config.KindRotating, Segment: "/data/audit.log." + fmt.Sprint(9-i),
					At:        t0().Add(2*time.Minute + time.Duration(i)*time.Second),
					ShedStats: backends.ShedStats{Records: 1000, Other: 2, Bytes: 1 << 30, Quarantined: 2, Oldest: ts - 3600, Newest: ts, HasTimes: true}})
			}
			must(t, rec.RecordEmergency(agent.EmergencyReport{At: t0().Add(2 * time.Minute), FileSystems: []agent.EmergencyFS{fs}}))
		},
		// A store that is missing run after run (a mistyped path) exports
		// when it was first found missing; one that appears clears it.
		"missing": func(t *testing.T, rec *agent.Recorder) {
			for i := range 3 {
				must(t, rec.Record(agent.Result{Target: "orders", Kind: config.KindJSONL, Outcome: agent.OutcomeNothingToDo,
					Started: t0().Add(time.Duration(i) * time.Hour), Duration: time.Millisecond}))
			}
			must(t, rec.Record(agent.Result{Target: "audit", Kind: config.KindRotating, Outcome: agent.OutcomeNothingToDo,
				Started: t0(), Duration: time.Millisecond}))
			must(t, rec.Record(okResult("audit", config.KindRotating, t0().Add(time.Hour))))
		},
	}
	for name, steps := range goldenSteps {
		t.Run(name, func(t *testing.T) {
			cfg := metricsConfig(t.TempDir())
			if name == "emergency" {
				optInKeepFree(cfg, "audit")
			}
			steps(t, newRecorder(t, cfg))
			got, err := os.ReadFile(cfg.Metrics.Textfile)
			if err != nil {
				t.Fatal(err)
			}
			parseProm(t, got)
			golden := filepath.Join("testdata", name+".prom")
			if *update {
				must(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("textfile differs from %s (run with -update to accept):\n%s", golden, lineDiff(string(want), string(got)))
			}
		})
	}
}

// optInKeepFree sets keep_free 5% and min_keep 1d on target name.
func optInKeepFree(cfg *config.Config, name string) {
	for i := range cfg.Targets {
		if cfg.Targets[i].Name == name {
			cfg.Targets[i].KeepFree = &config.Amount{Percent: 5}
			cfg.Targets[i].MinKeep = ptr(config.Duration(24 * time.Hour))
		}
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}

// parseProm parses a textfile as node_exporter does and returns each
// sample's value by its series ("name{l="v",…}").
func parseProm(t testing.TB, data []byte) map[string]float64 {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("textfile does not parse: %v\n%s", err, data)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help", name)
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			default:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func readProm(t *testing.T, path string) map[string]float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseProm(t, data)
}

func runsKey(target, kind, result string) string {
	return fmt.Sprintf("papyra_compact_runs_total{backend=%q,result=%q,target=%q}", kind, result, target)
}

// TestRecorder_CountersSurviveRestarts records with a new Recorder each
// time, as each timer run is a new process: counters keep growing.
func TestRecorder_CountersSurviveRestarts(t *testing.T) {
	cfg := metricsConfig(t.TempDir())
	for i := range 3 {
		must(t, newRecorder(t, cfg).Record(okResult("orders", config.KindJSONL, t0().Add(time.Duration(i)*time.Hour))))
	}
	got := readProm(t, cfg.Metrics.Textfile)
	for key, want := range map[string]float64{
		runsKey("orders", "jsonl", "success"):                                                3,
		`papyra_compact_records_removed_total{backend="jsonl",reason="age",target="orders"}`: 3 * 1020,
		`papyra_compact_records_quarantined_total{backend="jsonl",target="orders"}`:          3 * 20,
		`papyra_compact_reclaimed_bytes_total{backend="jsonl",target="orders"}`:              3 * (416379 - 104162),
		`papyra_compact_last_success_timestamp_seconds{backend="jsonl",target="orders"}`:     unix(t0().Add(2 * time.Hour)),
		`papyra_compact_oldest_record_age_seconds{backend="jsonl",target="orders"}`:          3600.5,
		runsKey("broken", "jsonl", "failure"):                                                0,
	} {
		t.Run(key, func(t *testing.T) {
			if got[key] != want {
				t.Errorf("got %v, want %v", got[key], want)
			}
		})
	}
}

// TestRecorder_ConcurrentWriters records from several recorders at once,
// as separate processes would (each takes the state lock through its own
// descriptor): no increment is lost.
func TestRecorder_ConcurrentWriters(t *testing.T) {
	const writers, each = 4, 10
	cfg := metricsConfig(t.TempDir())
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		rec := newRecorder(t, cfg)
		target := cfg.Targets[w%2].Name // two writers per target
		wg.Go(func() {
			for range each {
				errs <- rec.Record(agent.Result{Target: target, Kind: cfg.Targets[w%2].Kind, Outcome: agent.OutcomeLocked, Started: t0()})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got := readProm(t, cfg.Metrics.Textfile)
	for _, tg := range cfg.Targets[:2] {
		if v := got[runsKey(tg.Name, tg.Kind, "skipped_locked")]; v != writers/2*each {
			t.Errorf("%s: got %v skipped runs, want %v", tg.Name, v, writers/2*each)
		}
	}
}

// TestRecorder_Textfile covers the file itself: atomic replacement
// leaves no temp file, it is world-readable for node_exporter, an empty
// path disables it, and targets no longer configured are not exported.
func TestRecorder_Textfile(t *testing.T) {
	t.Run("NoTempFileAndMode0644", func(t *testing.T) {
		cfg := metricsConfig(t.TempDir())
		rec := newRecorder(t, cfg)
		for range 5 {
			must(t, rec.Record(okResult("orders", config.KindJSONL, t0())))
		}
		ents, err := os.ReadDir(filepath.Dir(cfg.Metrics.Textfile))
		must(t, err)
		if len(ents) != 1 || ents[0].Name() != "papyra_compact.prom" {
			t.Errorf("got %v in the textfile directory, want only papyra_compact.prom", ents)
		}
		st, err := os.Stat(cfg.Metrics.Textfile)
		must(t, err)
		if st.Mode().Perm() != 0o644 {
			t.Errorf("got mode %v, want 0644", st.Mode().Perm())
		}
	})
	t.Run("Disabled", func(t *testing.T) {
		cfg := metricsConfig(t.TempDir())
		path := cfg.Metrics.Textfile
		cfg.Metrics.Textfile = ""
		must(t, newRecorder(t, cfg).Record(okResult("orders", config.KindJSONL, t0())))
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("textfile written although disabled: %v", err)
		}
		if _, found, err := agent.LoadTargetState(cfg.StateDir, "orders"); !found || err != nil {
			t.Errorf("state not written: found %v, err %v", found, err)
		}
	})
	t.Run("RemovedTargetNotExported", func(t *testing.T) {
		cfg := metricsConfig(t.TempDir())
		must(t, newRecorder(t, cfg).Record(okResult("orders", config.KindJSONL, t0())))
		cfg.Targets = cfg.Targets[1:]
		must(t, newRecorder(t, cfg).WriteTextfile())
		for key := range readProm(t, cfg.Metrics.Textfile) {
			if strings.Contains(key, `target="orders"`) {
				t.Errorf("removed target still exported: %s", key)
			}
		}
	})
	t.Run("CorruptStateKept", func(t *testing.T) {
		cfg := metricsConfig(t.TempDir())
		path := agent.TargetStatePath(cfg.StateDir, "orders")
		must(t, os.MkdirAll(filepath.Dir(path), 0o755))
		must(t, os.WriteFile(path, []byte("{not json"), 0o644))
		err := newRecorder(t, cfg).Record(okResult("orders", config.KindJSONL, t0()))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("got %v, want an error naming %s", err, path)
		}
		if b, _ := os.ReadFile(path); string(b) != "{not json" {
			t.Errorf("corrupt state overwritten (counters reset): %q", b)
		}
		// The other targets' metrics are still written, and the
		// problem still reported.
		err = newRecorder(t, cfg).Record(okResult("audit", config.KindRotating, t0()))
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("got %v, want an error naming %s", err, path)
		}
		got := readProm(t, cfg.Metrics.Textfile)
		if got[runsKey("audit", "rotating", "success")] != 1 {
			t.Errorf("audit not exported: %v", got)
		}
		for key := range got {
			if strings.Contains(key, `target="orders"`) {
				t.Errorf("orders exported from an unreadable state: %s", key)
			}
		}
	})
}

// TestRecorder_OptionalValuesByReport: segment counters and consumer-group
// gauges follow what a kind's backends report, whatever the kind is
// called, and a run's optional values count only when it reported them.
func TestRecorder_OptionalValuesByReport(t *testing.T) {
	reg := backends.NewRegistry()
	reg.Register("shards", backends.Kind{New: memory.New, Reports: backends.ReportsSegments | backends.ReportsStream})
	reg.Register("plain", backends.Kind{New: memory.New})
	cfg := metricsConfig(t.TempDir())
	cfg.Targets = []config.Target{{Name: "s", Kind: "shards"}, {Name: "p", Kind: "plain"}}
	rec, err := agent.NewRecorder(cfg, reg, agent.RecorderOptions{Version: "v", GoVersion: "go"})
	must(t, err)
	must(t, rec.WriteTextfile())
	text := func() string {
		b, err := os.ReadFile(cfg.Metrics.Textfile)
		must(t, err)
		return string(b)
	}
	if got := text(); !strings.Contains(got, `papyra_compact_segments_dropped_total{backend="shards",target="s"} 0`) ||
		strings.Contains(got, `papyra_compact_segments_dropped_total{backend="plain"`) {
		t.Errorf("before any run: want segment counters for the kind that reports them only:\n%s", got)
	}
	s := okResult("s", "shards", t0())
	s.Stats.Segments = &backends.SegmentStats{Dropped: 2, Rewritten: 1}
	s.Stats.Stream = &backends.StreamStats{HeldBack: []backends.HeldBack{{Stream: "x", Group: "g", Entries: 5}}, RemovedCorrupt: 2}
	must(t, rec.Record(s))
	p := okResult("p", "plain", t0())
	must(t, rec.Record(p))
	got := text()
	for _, want := range []string{
		`papyra_compact_segments_dropped_total{backend="shards",target="s"} 2`,
		`papyra_compact_segments_rewritten_total{backend="shards",target="s"} 1`,
		`papyra_compact_redis_held_back_entries{backend="shards",target="s"} 5`,
		`papyra_compact_redis_group_held_back_entries{backend="shards",group="g",stream="x",target="s"} 5`,
		`papyra_compact_records_removed_total{backend="shards",reason="corrupt",target="s"} 2`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("textfile lacks %s:\n%s", want, got)
		}
	}
	if strings.Contains(got, `held_back_entries{backend="plain"`) || strings.Contains(got, `segments_dropped_total{backend="plain"`) ||
		strings.Contains(got, `reason="corrupt",target="p"`) {
		t.Errorf("textfile exports optional values for a kind that does not report them:\n%s", got)
	}
}

// TestSummary_OptionalGroups: the summary says what a backend reported
// beyond the common counts, and nothing for groups it did not report.
func TestSummary_OptionalGroups(t *testing.T) {
	r := okResult("audit", config.KindRotating, t0())
	if s := agent.Summary(r); strings.Contains(s, "segments") || strings.Contains(s, "estimated") {
		t.Errorf("no optional group reported, got %q", s)
	}
	r.Stats.Segments = &backends.SegmentStats{Dropped: 3, Rewritten: 1, Untouched: 4, BytesRead: 900}
	r.Stats.Stream = &backends.StreamStats{Estimated: true}
	s := agent.Summary(r)
	for _, want := range []string{"segments dropped 3, rewritten 1, untouched 4 (read 900 bytes)", "removal counts estimated"} {
		if strings.Count(s, want) != 1 {
			t.Errorf("summary %q: want %q once", s, want)
		}
	}
}
