package main_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// e2eEnv is a configuration over real stores in a temp directory: orders
// (the Papyra fixture), broken (a jsonl target whose path is a directory,
// so every run of it fails), cache (memory) and a few more copies of the
// fixture so that a pass rewrites the textfile many times.
type e2eEnv struct {
	dir, cfg, orders, textfile, stateDir, lockDir string
	targets                                       []string
}

func newE2EEnv(t *testing.T, extra int) e2eEnv {
	t.Helper()
	dir := t.TempDir()
	e := e2eEnv{
		dir:      dir,
		cfg:      filepath.Join(dir, "compact.yaml"),
		orders:   filepath.Join(dir, "data", "orders.jsonl"),
		textfile: filepath.Join(dir, "textfile", "papyra_compact.prom"),
		stateDir: filepath.Join(dir, "state"),
		lockDir:  filepath.Join(dir, "lock"),
	}
	for _, d := range []string{"data", "textfile", "data/broken"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), e.orders)
	var y strings.Builder
	fmt.Fprintf(&y, "state_dir: %s\nlock_dir: %s\nquarantine_dir: %s/quarantine\n", e.stateDir, e.lockDir, dir)
	fmt.Fprintf(&y, "metrics:\n  textfile: %s\n", e.textfile)
	y.WriteString("defaults:\n  grace_period: 10ms\n  retention:\n    max_records: 500\ntargets:\n")
	add := func(name, kind, path string) {
		fmt.Fprintf(&y, "  - name: %s\n    kind: %s\n", name, kind)
		if path != "" {
			fmt.Fprintf(&y, "    path: %s\n", path)
		}
		e.targets = append(e.targets, name)
	}
	add("orders", "jsonl", e.orders)
	add("broken", "jsonl", filepath.Join(dir, "data", "broken"))
	add("cache", "memory", "")
	for i := range extra {
		p := filepath.Join(dir, "data", fmt.Sprintf("s%d.jsonl", i))
		testutil.CopyFile(t, testutil.Fixture(t, "jsonl/store.jsonl"), p)
		add(fmt.Sprintf("s%d", i), "jsonl", p)
	}
	if err := os.WriteFile(e.cfg, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return e
}

// appendRecords appends n records to path as Papyra does, one write each.
func appendRecords(t *testing.T, path string, n int) {
	t.Helper()
	for i := range n {
		line := fmt.Sprintf(`{"kind": "event", "system_id": "local", "actor_address": {"system": "local", "actor_id": %d}, "event_type": "ActorStarted", "payload": {"reason": null, "i": %d, "note": "x"}, "timestamp": 1795000000.5}`+"\n", i, i)
		if err := testutil.AppendPapyra(path, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
}

// runBinary runs the built papyra-compact and returns its exit code and
// output. attr, when set, runs it as another user.
func runBinary(t *testing.T, bin string, attr *syscall.SysProcAttr, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return 0, stdout.String(), stderr.String()
}

// nodeExporter starts Debian's prometheus-node-exporter on a free
// loopback port with only the textfile collector, reading dir, and
// returns its /metrics URL. It is stopped (SIGTERM, then SIGKILL) in
// t.Cleanup.
func nodeExporter(t *testing.T, dir string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus-node-exporter")
	if err != nil {
		testutil.SkipOrFail(t, "prometheus-node-exporter not installed (make deps installs it)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+dir)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("node_exporter output:\n%s", logs.String())
		}
	})
	url := "http://" + addr + "/metrics"
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case <-done:
			t.Fatalf("node_exporter exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter does not answer on %s: %v\n%s", url, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scrape fetches and parses one exposition.
func scrape(c *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("scrape does not parse: %w", err)
	}
	return mfs, nil
}

// seriesKey names one sample: family{label="value",…}.
func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, lp := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
	}
	return name + "{" + strings.Join(ls, ",") + "}"
}

// counters returns every papyra_compact counter sample in a scrape.
func counters(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "papyra_compact_") || mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[seriesKey(name, m)] = m.GetCounter().GetValue()
		}
	}
	return out
}

func gaugeValue(mfs map[string]*dto.MetricFamily, name string) (float64, bool) {
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return 0, false
	}
	return mf.GetMetric()[0].GetGauge().GetValue(), true
}

func runsKey(target, backend, result string) string {
	return fmt.Sprintf("papyra_compact_runs_total{backend=%q,result=%q,target=%q}", backend, result, target)
}

// TestTextfile_NodeExporter runs a real node_exporter over the textfile
// while separate papyra-compact processes rewrite it back to back, and
// scrapes it as fast as it answers: every scrape must parse, report no
// textfile error, carry every target's counters (never half a file), and
// no counter may ever go down, across processes.
func TestTextfile_NodeExporter(t *testing.T) {
	env := newE2EEnv(t, 5)
	url := nodeExporter(t, filepath.Dir(env.textfile))
	bin := testutil.Binary(t)

	var (
		mu      sync.Mutex
		last    = map[string]float64{}
		scrapes int
		seen    int // scrapes that saw our file
		errs    []string
	)
	fail := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	check := func(mfs map[string]*dto.MetricFamily) {
		mu.Lock()
		defer mu.Unlock()
		scrapes++
		if v, ok := gaugeValue(mfs, "node_textfile_scrape_error"); !ok || v != 0 {
			fail("scrape %d: node_textfile_scrape_error %v (present %v)", scrapes, v, ok)
		}
		cs := counters(mfs)
		if len(cs) == 0 {
			return // before the first write
		}
		seen++
		for _, target := range env.targets {
			for _, result := range []string{"success", "failure", "skipped_locked", "dry_run"} {
				backend := "jsonl"
				if target == "cache" {
					backend = "memory"
				}
				if _, ok := cs[runsKey(target, backend, result)]; !ok {
					fail("scrape %d: %s missing: a partial file was read", scrapes, runsKey(target, backend, result))
				}
			}
		}
		for k, v := range cs {
			if prev, ok := last[k]; ok && v < prev {
				fail("scrape %d: counter %s went down from %v to %v", scrapes, k, prev, v)
			}
			last[k] = v
		}
	}

	stop := make(chan struct{})
	scraperDone := make(chan struct{})
	go func() {
		defer close(scraperDone)
		c := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			mfs, err := scrape(c, url)
			if err != nil {
				mu.Lock()
				fail("scrape: %v", err)
				mu.Unlock()
				continue
			}
			check(mfs)
		}
	}()

	start := time.Now()
	// Three separate processes, each after Papyra appended more records.
	for i := range 3 {
		if i > 0 {
			appendRecords(t, env.orders, 300)
		}
		if code, out, errOut := runBinary(t, bin, nil, "run", "--config", env.cfg, "--now", "1795000000"); code != 1 {
			t.Fatalf("run %d: got exit %d, want 1 (broken fails)\n%s%s", i, code, out, errOut)
		}
	}
	// A dry run, and a run skipped because the test holds the store's lock.
	if code, out, errOut := runBinary(t, bin, nil, "run", "--config", env.cfg, "--dry-run", "--target", "orders"); code != 0 {
		t.Fatalf("dry run: got exit %d, want 0\n%s%s", code, out, errOut)
	}
	unlock := holdStoreLock(t, env)
	if code, out, errOut := runBinary(t, bin, nil, "run", "--config", env.cfg, "--target", "orders"); code != 75 {
		t.Fatalf("locked run: got exit %d, want 75\n%s%s", code, out, errOut)
	}
	unlock()
	runs := time.Since(start)
	time.Sleep(50 * time.Millisecond) // let the scraper see the last write
	close(stop)
	<-scraperDone

	final, err := scrape(http.DefaultClient, url)
	if err != nil {
		t.Fatal(err)
	}
	check(final)
	mu.Lock()
	defer mu.Unlock()
	for _, e := range errs {
		t.Error(e)
	}
	t.Logf("5 processes in %v; %d scrapes, %d of them over the textfile", runs.Round(time.Millisecond), scrapes, seen)
	if seen < 10 {
		t.Errorf("got %d scrapes over the textfile, want at least 10 for the test to mean anything", seen)
	}
	cs := counters(final)
	for key, want := range map[string]float64{
		runsKey("orders", "jsonl", "success"):        3,
		runsKey("orders", "jsonl", "dry_run"):        1,
		runsKey("orders", "jsonl", "skipped_locked"): 1,
		runsKey("broken", "jsonl", "failure"):        3,
		runsKey("cache", "memory", "success"):        3,
		// 1500 from the fixture by max_records 500, then 300 each run.
		`papyra_compact_records_removed_total{backend="jsonl",reason="count",target="orders"}`: 1500 + 300 + 300,
		`papyra_compact_records_quarantined_total{backend="jsonl",target="orders"}`:            20,
	} {
		if cs[key] != want {
			t.Errorf("%s: got %v, want %v", key, cs[key], want)
		}
	}
	if _, ok := final["node_textfile_mtime_seconds"]; !ok {
		t.Error("node_textfile_mtime_seconds missing: node_exporter did not read the file")
	}
}
