package agent_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// fakeBackend stands in for a store: its Plan runs a test's function, to
// make a compaction slow, moving or stuck.
type fakeBackend struct {
	target config.Target
	env    backends.Env
	plan   func(ctx context.Context, b *fakeBackend, p backends.Policy) error
}

func (b *fakeBackend) Recover(context.Context) error { return nil }
func (b *fakeBackend) Close() error                  { return nil }
func (b *fakeBackend) Apply(context.Context, backends.Plan) (backends.Stats, error) {
	return backends.Stats{RecordsBefore: 2, RecordsAfter: 1, RemovedCount: 1}, nil
}
func (b *fakeBackend) Plan(ctx context.Context, p backends.Policy) (backends.Plan, error) {
	if b.plan != nil {
		if err := b.plan(ctx, b, p); err != nil {
			return nil, err
		}
	}
	return fakePlan{}, nil
}

type fakePlan struct{}

func (fakePlan) Stats() backends.Stats { return backends.Stats{} }
func (fakePlan) Close() error          { return nil }

// fakeSource is a ConfigSource whose Current can be made to block, which
// is how a test makes the scheduler's loop stuck.
type fakeSource struct {
	cur   atomic.Pointer[agent.Snapshot]
	block atomic.Pointer[chan struct{}]
	// blocked, when set, receives (without waiting) each time Current
	// starts to block: the loop is stuck from then on.
	blocked chan struct{}
}

func (s *fakeSource) Current() *agent.Snapshot {
	if ch := s.block.Load(); ch != nil {
		select {
		case s.blocked <- struct{}{}:
		default:
		}
		<-*ch
	}
	return s.cur.Load()
}

func (s *fakeSource) Status() agent.ReloadStatus { return agent.ReloadStatus{OK: true} }

// schedTarget is a memory target with its own interval.
func schedTarget(name string, interval time.Duration) config.Target {
	d := config.Duration(interval)
	return config.Target{Name: name, Kind: config.KindMemory, Interval: &d}
}

// newSnapshot builds a snapshot whose memory targets run plan.
func newSnapshot(t *testing.T, gen uint64, plan func(context.Context, *fakeBackend, backends.Policy) error, targets ...config.Target) *agent.Snapshot {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.StateDir, cfg.LockDir, cfg.QuarantineDir = filepath.Join(dir, "state"), filepath.Join(dir, "lock"), filepath.Join(dir, "q")
	cfg.Metrics.Textfile = ""
	cfg.Targets = targets
	reg := backends.NewRegistry()
	reg.Register(config.KindMemory, backends.Kind{New: func(tg config.Target, env backends.Env) (backends.Backend, error) {
		return &fakeBackend{target: tg, env: env, plan: plan}, nil
	}})
	return &agent.Snapshot{Config: cfg, Agent: agent.New(cfg, reg, slog.New(slog.DiscardHandler)), Gen: gen}
}

// results collects OnResult calls.
type results struct {
	mu  sync.Mutex
	got []agent.Result
}

func (r *results) add(res agent.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, res)
}

func (r *results) count(target string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, res := range r.got {
		if res.Target == target {
			n++
		}
	}
	return n
}

// runScheduler runs s until the test ends (or stop is called) and
// returns stop, which waits for Run and returns its error.
func runScheduler(t *testing.T, s *agent.Scheduler) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestScheduler_AddRemove(t *testing.T) {
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, nil, schedTarget("a", time.Hour), schedTarget("b", time.Hour)))
	var res results
	var schedMu sync.Mutex
	scheduled := map[string]time.Duration{}
	s := agent.NewScheduler(agent.SchedulerOptions{
		Source:   src,
		OnResult: res.add,
		OnSchedule: func(s agent.Schedule) {
			schedMu.Lock()
			scheduled[s.Target] = s.Interval
			schedMu.Unlock()
		},
	})
	runScheduler(t, s)
	eventually(t, 5*time.Second, "a and b run", func() bool { return res.count("a") == 1 && res.count("b") == 1 })

	// Remove a, add c with a short interval.
	src.cur.Store(newSnapshot(t, 2, nil, schedTarget("b", time.Hour), schedTarget("c", 30*time.Millisecond)))
	s.Wake()
	eventually(t, 5*time.Second, "c runs repeatedly", func() bool { return res.count("c") >= 3 })
	if got := res.count("a"); got != 1 {
		t.Errorf("a runs: got %v, want 1 (removed)", got)
	}
	if got := res.count("b"); got != 1 {
		t.Errorf("b runs: got %v, want 1 (hourly)", got)
	}
	schedMu.Lock()
	defer schedMu.Unlock()
	if got, want := scheduled["c"], 30*time.Millisecond; got != want {
		t.Errorf("OnSchedule interval of c: got %v, want %v", got, want)
	}
}

func TestScheduler_InFlightKeepsConfig(t *testing.T) {
	release := make(chan struct{})
	var (
		mu       sync.Mutex
		graces   []time.Duration
		active   int
		overlaps int
	)
	plan := func(ctx context.Context, b *fakeBackend, _ backends.Policy) error {
		mu.Lock()
		graces = append(graces, b.env.GracePeriod)
		active++
		if active > 1 {
			overlaps++
		}
		first := len(graces) == 1
		mu.Unlock()
		defer func() { mu.Lock(); active--; mu.Unlock() }()
		if first {
			<-release
		}
		return nil
	}
	withGrace := func(name string, iv, grace time.Duration) config.Target {
		tg := schedTarget(name, iv)
		g := config.Duration(grace)
		tg.GracePeriod = &g
		return tg
	}
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, plan, withGrace("a", 20*time.Millisecond, time.Second)))
	var res results
	s := agent.NewScheduler(agent.SchedulerOptions{Source: src, OnResult: res.add, Concurrency: 4})
	runScheduler(t, s)
	eventually(t, 5*time.Second, "first run in flight", func() bool { mu.Lock(); defer mu.Unlock(); return active == 1 })

	// Reload while it runs: the run keeps its settings, and no second
	// run of the same target starts beside it, though it is overdue.
	src.cur.Store(newSnapshot(t, 2, plan, withGrace("a", 20*time.Millisecond, 2*time.Second)))
	s.Wake()
	time.Sleep(100 * time.Millisecond)
	close(release)
	eventually(t, 5*time.Second, "runs after the reload", func() bool { return res.count("a") >= 2 })

	mu.Lock()
	defer mu.Unlock()
	if graces[0] != time.Second || graces[1] != 2*time.Second {
		t.Errorf("grace per run: got %v, want 1s (started before the reload), then 2s", graces)
	}
	if overlaps != 0 {
		t.Errorf("overlapping runs of one target: got %v, want 0", overlaps)
	}
}

func TestScheduler_WatchdogFromLoop(t *testing.T) {
	sock := notifyEnv(t, 200*time.Millisecond)
	n := agent.NewNotifier(nil, agent.NotifierOptions{})
	defer n.Close()
	src := &fakeSource{blocked: make(chan struct{}, 1)}
	src.cur.Store(newSnapshot(t, 1, nil, schedTarget("a", time.Hour)))
	runScheduler(t, agent.NewScheduler(agent.SchedulerOptions{Source: src, Notifier: n}))

	pings := func(d time.Duration) int {
		count := 0
		for deadline := time.Now().Add(d); time.Now().Before(deadline); {
			if m, ok := sock.Poll(time.Until(deadline)); ok && m == "WATCHDOG=1" {
				count++
			}
		}
		return count
	}
	// The loop wakes every half interval (100ms) even with nothing due
	// (the target is due in an hour). The window is measured again, a
	// bounded number of times, when a loaded machine starved the loop:
	// a loop that does not wake by itself gets none in any window.
	live := 0
	for range 3 {
		if live = pings(600 * time.Millisecond); live >= 3 {
			break
		}
	}
	if live < 3 {
		t.Errorf("pings from a live loop in 600ms: got %v, want >= 3", live)
	}

	// Make the loop stuck: the pings stop, which is what lets systemd
	// kill it. A ticker goroutine would have kept pinging. Once the loop
	// is blocked (not after a sleep: an iteration under way may outlast
	// it on a loaded machine), the test marks the socket: the loop's
	// pings sent before are queued ahead of the mark, and none may come
	// after it.
	stuck := make(chan struct{})
	src.block.Store(&stuck)
	select {
	case <-src.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the loop never called Current again")
	}
	mark(t, sock.Path, "TEST-MARK")
	sock.WaitFor(t, 30*time.Second, "the test's mark", func(m string) bool { return m == "TEST-MARK" })
	if got := pings(500 * time.Millisecond); got != 0 {
		t.Errorf("pings from a stuck loop: got %v, want 0", got)
	}
	src.block.Store(nil)
	close(stuck)
	sock.WaitFor(t, 30*time.Second, "a ping after the loop recovered", func(m string) bool { return m == "WATCHDOG=1" })
}

// mark sends msg to the notify socket at path, as another sender would.
func mark(t *testing.T, path, msg string) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func TestScheduler_StatusAndExtend(t *testing.T) {
	sock := notifyEnv(t, 0)
	n := agent.NewNotifier(nil, agent.NotifierOptions{StatusInterval: 10 * time.Millisecond})
	defer n.Close()
	// a reports no progress until the test has read its starting status
	// on the socket: the loop's first report races with the run's first
	// step, and a run that moved first is rightly shown by its step (it
	// flaked under load when the run won).
	begin := make(chan struct{})
	var runTook atomic.Int64 // a's run, from its first step to its end
	plan := func(ctx context.Context, b *fakeBackend, p backends.Policy) error {
		if b.target.Name != "a" {
			return nil
		}
		<-begin
		start := time.Now()
		for i := int64(1); i <= 60; i++ {
			p.Progress(backends.Step{Phase: "rewrite", Done: i * 1000, Total: 60_000})
			time.Sleep(25 * time.Millisecond)
		}
		runTook.Store(int64(time.Since(start)))
		return nil
	}
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, plan, schedTarget("a", time.Hour), schedTarget("b", time.Hour)))
	var res results
	runScheduler(t, agent.NewScheduler(agent.SchedulerOptions{
		Source: src, Notifier: n, OnResult: res.add, ExtendTimeout: 400 * time.Millisecond,
	}))

	// Deadlines only bound a failure: the whole sequence on the socket is
	// judged, not the last message.
	seen := sock.WaitFor(t, 30*time.Second, "a starting status", testutil.HasPrefix("STATUS=a: "))
	close(begin)
	if !slices.Contains(seen, "STATUS=a: starting, 1 of 2 targets") {
		t.Errorf("got %q, want a starting status before a reported progress", seen)
	}
	seen = append(seen, sock.WaitFor(t, 30*time.Second, "idle status after both runs", testutil.HasPrefix("STATUS=idle, 2 targets, next: a at "))...)
	var progress, extends int
	for _, m := range seen {
		switch {
		case strings.HasPrefix(m, "STATUS=a: rewrite ") && strings.HasSuffix(m, "% of 58.6 KiB, 1 of 2 targets"):
			progress++
		case m == "EXTEND_TIMEOUT_USEC=400000":
			extends++
		}
	}
	if progress == 0 || extends == 0 {
		t.Errorf("got %d progress statuses and %d extensions, want some of each; messages: %q", progress, extends, seen)
	}
	// The loop refreshes once a second while the run goes on (1.5s, longer
	// on a loaded machine: the bound follows the run's own length); many
	// more would mean it spins (b waits, due, for the only slot): one
	// status per step, some 60.
	took := time.Duration(runTook.Load())
	if allowed := 3 + int(took/time.Second); progress > allowed {
		t.Errorf("got %d progress statuses in a %v run, want about one a second (at most %d): %q", progress, took.Round(time.Millisecond), allowed, seen)
	}
}

func TestScheduler_Shutdown(t *testing.T) {
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	tests := []struct {
		name     string
		grace    time.Duration
		plan     func(ctx context.Context, b *fakeBackend, p backends.Policy) error
		reported int
		outcome  agent.Outcome
		log      string
	}{
		{"FinishesWithinGrace", 5 * time.Second, func(ctx context.Context, _ *fakeBackend, _ backends.Policy) error {
			time.Sleep(300 * time.Millisecond) // ignores ctx: finishes on its own
			return nil
		}, 1, agent.OutcomeOK, ""},
		// Cancelled before the grace ends: reported as interrupted (it
		// was once dropped unreported), never as a failure.
		{"CancelledWithinGrace", 100 * time.Millisecond, func(ctx context.Context, _ *fakeBackend, _ backends.Policy) error {
			<-ctx.Done()
			return ctx.Err()
		}, 1, agent.OutcomeInterrupted, "run interrupted"},
		// Deaf to cancellation (a hung system call): abandoned when the
		// grace ends, and reported as interrupted.
		{"AbandonedAfterGrace", 100 * time.Millisecond, func(ctx context.Context, _ *fakeBackend, _ backends.Policy) error {
			<-hung
			return nil
		}, 1, agent.OutcomeInterrupted, "abandoned: still running at the end of the stop grace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := notifyEnv(t, 0)
			n := agent.NewNotifier(nil, agent.NotifierOptions{StatusInterval: time.Millisecond})
			defer n.Close()
			src := &fakeSource{}
			started := make(chan struct{})
			var once sync.Once
			plan := func(ctx context.Context, b *fakeBackend, p backends.Policy) error {
				once.Do(func() { close(started) })
				return tt.plan(ctx, b, p)
			}
			src.cur.Store(newSnapshot(t, 1, plan, schedTarget("a", time.Hour)))
			var res results
			logs := &syncBuffer{}
			stop := runScheduler(t, agent.NewScheduler(agent.SchedulerOptions{
				Source: src, Notifier: n, OnResult: res.add, StopGrace: tt.grace,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			}))
			<-started
			// No wall-clock bound here (it flaked on a loaded machine):
			// that Run returns at all while the deaf run still hangs shows
			// the grace ends it; the real-signal tests in cmd bound it.
			if err := stop(); err != nil {
				t.Errorf("Run: got %v, want nil after a clean stop", err)
			}
			if got := res.count("a"); got != tt.reported {
				t.Errorf("results reported: got %v, want %v", got, tt.reported)
			}
			res.mu.Lock()
			for _, r := range res.got {
				if r.Outcome != tt.outcome {
					t.Errorf("outcome: got %v (%v), want %v", r.Outcome, r.Err, tt.outcome)
				}
			}
			res.mu.Unlock()
			if !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log: got %q, want %q", logs.String(), tt.log)
			}
			seen := sock.WaitFor(t, 30*time.Second, "STOPPING=1", func(m string) bool { return m == "STOPPING=1" })
			if slices.Contains(seen, "READY=1") {
				t.Errorf("got READY=1 from the scheduler, want it left to the daemon: %q", seen)
			}
			rest := sock.WaitFor(t, 30*time.Second, "final status", func(m string) bool { return m == "STATUS=stopped" })
			if !slices.ContainsFunc(rest, func(m string) bool { return strings.HasPrefix(m, "STATUS=stopping, waiting for a: ") }) {
				t.Errorf("got %q, want a stopping status naming a", rest)
			}
		})
	}
}

// TestScheduler_ResumesFromLastStart: after a restart, a target that ran
// recently waits out its interval; one with no record runs at once.
func TestScheduler_ResumesFromLastStart(t *testing.T) {
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, nil, schedTarget("recent", time.Hour), schedTarget("new", time.Hour)))
	last := time.Now().Add(-10 * time.Minute)
	var res results
	var mu sync.Mutex
	next := map[string]time.Time{}
	s := agent.NewScheduler(agent.SchedulerOptions{
		Source:   src,
		OnResult: res.add,
		LastStart: func(target string) (time.Time, bool) {
			return last, target == "recent"
		},
		OnSchedule: func(s agent.Schedule) {
			mu.Lock()
			defer mu.Unlock()
			next[s.Target] = s.Next
		},
	})
	stop := runScheduler(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for res.count("new") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := res.count("new"); got != 1 {
		t.Errorf("runs of the target with no record: got %d, want 1", got)
	}
	if got := res.count("recent"); got != 0 {
		t.Errorf("runs of the target that ran 10 minutes ago: got %d, want 0", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if got, want := next["recent"], last.Add(time.Hour); !got.Equal(want) {
		t.Errorf("next run of the recent target: got %v, want %v", got, want)
	}
}

// TestRunOnce_Interrupted: a pass stopped mid-target reports the one in
// flight (cancelled within the stop grace) and those it did not start
// as interrupted, never as failed; and a target deaf to cancellation is
// abandoned at the end of the grace.
func TestRunOnce_Interrupted(t *testing.T) {
	hung := make(chan struct{})
	t.Cleanup(func() { close(hung) })
	for _, deaf := range []bool{false, true} {
		t.Run(fmt.Sprintf("deaf=%v", deaf), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			plan := func(pctx context.Context, b *fakeBackend, _ backends.Policy) error {
				if b.target.Name != "a" {
					return nil
				}
				cancel() // SIGTERM while a compacts
				if deaf {
					<-hung
					return nil
				}
				<-pctx.Done()
				return pctx.Err()
			}
			snap := newSnapshot(t, 1, plan, schedTarget("a", time.Hour), schedTarget("b", time.Hour))
			res, err := snap.Agent.RunOnce(ctx, agent.Options{StopGrace: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != 2 || res[0].Outcome != agent.OutcomeInterrupted || res[1].Outcome != agent.OutcomeInterrupted ||
				!errors.Is(res[1].Err, agent.ErrNotStarted) {
				t.Fatalf("got %+v, want a and b interrupted, b not started", res)
			}
			if got := agent.Worst(res); got != agent.OutcomeInterrupted {
				t.Errorf("Worst: got %v, want interrupted", got)
			}
			var st agent.TargetState
			st.Apply(res[0])
			if st.Failing() || st.Counters.RunsInterrupted != 1 || st.Counters.RunsFailure != 0 || st.LastResult != "interrupted" {
				t.Errorf("state after an interrupted run: %+v", st)
			}
		})
	}
}

// TestScheduler_Fair: with one slot, a target whose runs outlast its
// interval does not keep the slot: a target listed after it, due less
// often, runs too, and the slow one is not started again the moment it
// lands. Counts and order only, no wall-clock bounds.
func TestScheduler_Fair(t *testing.T) {
	var mu sync.Mutex
	var order []string
	plan := func(ctx context.Context, b *fakeBackend, _ backends.Policy) error {
		mu.Lock()
		order = append(order, b.target.Name)
		mu.Unlock()
		if b.target.Name == "slow" {
			time.Sleep(150 * time.Millisecond) // three intervals
		}
		return nil
	}
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, plan, schedTarget("slow", 50*time.Millisecond), schedTarget("small", 100*time.Millisecond)))
	var res results
	var lateMu sync.Mutex
	late := map[string]time.Duration{}
	stop := runScheduler(t, agent.NewScheduler(agent.SchedulerOptions{
		Source: src, OnResult: res.add,
		OnSchedule: func(s agent.Schedule) {
			lateMu.Lock()
			late[s.Target] = max(late[s.Target], s.Lateness)
			lateMu.Unlock()
		},
	}))
	eventually(t, time.Minute, "small runs three times", func() bool { return res.count("small") >= 3 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Each start of slow must be followed by another target's before
	// slow starts again: its length never makes it due at once.
	for i := 1; i < len(order); i++ {
		if order[i] == "slow" && order[i-1] == "slow" {
			t.Errorf("slow started twice in a row: %v", order)
			break
		}
	}
	lateMu.Lock()
	defer lateMu.Unlock()
	if late["small"] <= 0 {
		t.Errorf("small waited behind slow, want a lateness reported; got %v", late)
	}
}

// TestScheduler_MostOverdueFirst: when a slot frees, the target due the
// longest starts first, whatever the configuration order.
func TestScheduler_MostOverdueFirst(t *testing.T) {
	var mu sync.Mutex
	var order []string
	plan := func(ctx context.Context, b *fakeBackend, _ backends.Policy) error {
		mu.Lock()
		order = append(order, b.target.Name)
		mu.Unlock()
		if b.target.Name == "hog" {
			time.Sleep(300 * time.Millisecond)
		}
		return nil
	}
	// a runs first and is due again 100ms later; hog then holds the slot
	// 300ms while b (due since the start) and a (due since 100ms) wait.
	src := &fakeSource{}
	src.cur.Store(newSnapshot(t, 1, plan, schedTarget("a", 100*time.Millisecond), schedTarget("hog", time.Hour), schedTarget("b", time.Hour)))
	var res results
	stop := runScheduler(t, agent.NewScheduler(agent.SchedulerOptions{Source: src, OnResult: res.add}))
	eventually(t, time.Minute, "a twice, b once", func() bool { return res.count("a") >= 2 && res.count("b") >= 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) < 4 || !slices.Equal(order[:4], []string{"a", "hog", "b", "a"}) {
		t.Errorf("start order: got %v, want a, hog, then b (due longest) before a", order)
	}
}
