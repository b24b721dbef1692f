package agent

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/failpoint"
)

// ConfigSource gives the scheduler the configuration in use. *Reloader is
// the one the daemon uses.
type ConfigSource interface {
	// Current returns the snapshot to schedule from; never nil.
	Current() *Snapshot
	// Status returns the outcome of the latest reload, shown in the
	// service status line when it failed.
	Status() ReloadStatus
}

// Defaults of SchedulerOptions.
const (
	// DefaultExtendTimeout is what each EXTEND_TIMEOUT_USEC= grants while
	// a compaction makes progress.
	DefaultExtendTimeout = time.Minute
	// lockedRetry bounds the wait before retrying a target that was
	// skipped because another process held its store's lock (an admin's
	// manual run): sooner than a long interval, never a busy loop.
	lockedRetry = time.Minute
	// statusTick is how often the loop refreshes STATUS= while
	// compactions run; the notifier throttles to the same rate.
	statusTick = time.Second
)

// SchedulerOptions configure NewScheduler.
type SchedulerOptions struct {
	// Source is read at every iteration of the loop.
	Source ConfigSource
	// Notifier receives STATUS=, EXTEND_TIMEOUT_USEC=, WATCHDOG=1 and
	// STOPPING=1; nil tells nobody.
	Notifier *Notifier
	// Logger receives one entry per run (LogResult) and the schedule's
	// changes.
	Logger *slog.Logger
	// Concurrency is how many targets may compact at once; 0 means 1.
	// Compaction is I/O-bound and meant to yield to the application, so
	// one at a time is the default.
	Concurrency int
	// StopGrace is how long compactions in flight at shutdown may take
	// to finish: they are cancelled shortly before it ends, and Run
	// returns when it ends, whatever they are doing (Options.StopGrace).
	// A cancelled or killed compaction leaves its store as it was, or for
	// the next run to finish (Backend.Apply's contract).
	StopGrace time.Duration
	// ExtendTimeout is granted by each EXTEND_TIMEOUT_USEC=; zero means
	// DefaultExtendTimeout.
	ExtendTimeout time.Duration
	// OnResult, when set, is called with every finished run's result,
	// from the loop goroutine, one at a time (metrics and state). Runs
	// stopped by shutdown are reported as OutcomeInterrupted, those still
	// running at the end of StopGrace too (they are abandoned).
	OnResult func(Result)
	// OnSchedule, when set, is called from the loop whenever a target's
	// next start, interval or lateness changes (status and metrics); a
	// growing lateness is reported at most every lateReport.
	OnSchedule func(Schedule)
	// LastStart, when set, tells when a target's last real run started
	// (from the state directory, whoever ran it: this daemon before a
	// restart, or a manual `run`). A target seen for the first time is
	// then due one interval after that, not at once, so that restarting
	// the daemon (an upgrade, a crash) does not compact every store at
	// the same moment. ok false, or a last run that failed, means due now.
	LastStart func(target string) (start time.Time, ok bool)
	// Emergency, when set, is the light check run at start and then
	// every EmergencyEvery, on its own goroutine, beside the schedule
	// (the free space of opted-in file systems, keep_free): a disk must
	// not fill up for an hour because the next compaction is an hour
	// away. It is given the compactions' context.
	Emergency func(ctx context.Context)
	// EmergencyEvery is how often Emergency runs; zero means
	// DefaultEmergencyEvery.
	EmergencyEvery time.Duration
}

// DefaultEmergencyEvery is how often the daemon checks free space
// against keep_free.
const DefaultEmergencyEvery = time.Minute

// Scheduler is the daemon's work loop: it compacts every target of the
// current configuration once per its interval (measured start to start).
//
// One goroutine, the loop, owns the schedule; compactions run in their own
// goroutines and report back over a channel. The loop sends WATCHDOG=1
// once per iteration and wakes at least twice per watchdog interval, so a
// stuck loop stops the pings and systemd kills and restarts the service.
// A compaction in flight does not block the loop. Not guaranteed: the
// watchdog does not catch a compaction stuck in its own goroutine (one
// waiting on a hung NFS server, say); it shows as progress that stops
// moving in STATUS=, and at shutdown it is cancelled after StopGrace.
// Pinging from a ticker goroutine was rejected: it keeps pinging while
// the loop is stuck, which is the one failure the watchdog is there for.
//
// On a configuration change (Wake, or seen at the next iteration) added
// targets are scheduled at once, removed ones are no longer started, and
// a changed interval counts from the target's last start. A compaction in
// flight finishes under the snapshot it started with, and a target is
// never started twice at once.
type Scheduler struct {
	opts SchedulerOptions
	log  *slog.Logger
	wake chan struct{}
}

// NewScheduler returns a scheduler; Run starts it.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	if opts.ExtendTimeout <= 0 {
		opts.ExtendTimeout = DefaultExtendTimeout
	}
	return &Scheduler{opts: opts, log: opts.Logger, wake: make(chan struct{}, 1)}
}

// Wake makes the loop look at the configuration now rather than at its
// next timer. It never blocks.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Schedule is one target's place in the daemon's schedule.
type Schedule struct {
	Target   string
	Next     time.Time // when it is due next
	Interval time.Duration
	// Lateness is how late its current or last start was: from when it
	// was due to when it started, or, while it waits for a free slot,
	// to now. A lateness that keeps growing is a target starved by the
	// others (or by a concurrency too low for the intervals).
	Lateness time.Duration
}

// lateReport is how often a growing lateness is reported while a target
// waits for a slot: status and metrics see it, and the state files are
// not rewritten every loop iteration.
const lateReport = 5 * time.Second

// entry is one scheduled target.
type entry struct {
	target    config.Target
	interval  time.Duration
	next      time.Time
	lastStart time.Time
	lateness  time.Duration
	lateShown time.Time // when a waiting lateness was last reported
}

// flight is one compaction in progress.
type flight struct {
	target  string
	started time.Time

	mu    sync.Mutex
	step  backends.Step
	moved bool // progress since the loop last looked
}

func (f *flight) progress(_ string, s backends.Step) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != f.step {
		f.step = s
		f.moved = true
	}
}

// landed is a finished compaction.
type landed struct {
	f   *flight
	res Result
}

// loop is the state Run's goroutine owns.
type loop struct {
	*Scheduler
	snap       *Snapshot
	entries    map[string]*entry
	flights    map[string]*flight
	results    chan landed
	gone       chan struct{} // closed when Run returns: abandoned runs stop reporting
	runCtx     context.Context
	lastStatus string
	lastExtend time.Time
	stopping   bool
}

// Run schedules until ctx is done, then sends STOPPING=1, lets the
// compactions in flight finish within StopGrace, cancels those still
// running, and returns once every one has returned. It returns nil after
// such a clean stop.
func (s *Scheduler) Run(ctx context.Context) error {
	// Compactions get their own context: cancelling ctx starts the
	// shutdown, which gives them StopGrace before cancelling runCtx.
	runCtx, cancelRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRuns()
	l := &loop{
		Scheduler: s,
		entries:   map[string]*entry{},
		flights:   map[string]*flight{},
		results:   make(chan landed),
		gone:      make(chan struct{}),
		runCtx:    runCtx,
	}
	defer close(l.gone)
	// Free space first: no target starts before the first emergency
	// check is over (the loop keeps pinging the watchdog meanwhile).
	var checked <-chan struct{}
	if s.opts.Emergency != nil {
		var stop func()
		stop, checked = s.emergencyTicker(ctx, runCtx)
		defer stop()
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// A test-only fail point ("scheduler-loop:sleep=1h") makes the
		// loop stuck, to see the watchdog kill the service.
		_ = failpoint.Inject("scheduler-loop")
		now := time.Now()
		l.reconcile(s.opts.Source.Current(), now)
		if isClosed(checked) {
			l.startDue(now)
		}
		l.report(now)
		s.opts.Notifier.Watchdog()

		wait := l.sleep(time.Now())
		if !isClosed(checked) {
			// Due targets wait for the first emergency check, which
			// wakes the loop when it is over: no spinning meanwhile.
			wait = time.Hour
			if wd := s.opts.Notifier.WatchdogInterval(); wd > 0 {
				wait = wd / 2
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return l.shutdown(cancelRuns)
		case d := <-l.results:
			l.land(d)
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// isClosed reports whether ch is closed; a nil channel counts as closed.
func isClosed(ch <-chan struct{}) bool {
	if ch == nil {
		return true
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// emergencyTicker runs the emergency check now and every EmergencyEvery
// until ctx is done (no new check starts during the stop grace); checked
// is closed, and the loop woken, once the first check is over. A check in
// flight then finishes under runCtx; stop cancels it and waits.
func (s *Scheduler) emergencyTicker(ctx, runCtx context.Context) (stop func(), checked <-chan struct{}) {
	every := s.opts.EmergencyEvery
	if every <= 0 {
		every = DefaultEmergencyEvery
	}
	checkCtx, cancel := context.WithCancel(runCtx)
	done := make(chan struct{})
	first := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.opts.Emergency(checkCtx)
			if !isClosed(first) {
				close(first)
				s.Wake()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}, first
}

// reconcile brings the schedule in line with snap.
func (l *loop) reconcile(snap *Snapshot, now time.Time) {
	if snap == l.snap {
		return
	}
	first := l.snap == nil
	l.snap = snap
	seen := make(map[string]bool, len(snap.Config.Targets))
	for _, t := range snap.Config.Targets {
		seen[t.Name] = true
		iv := snap.Config.Interval(t)
		e, ok := l.entries[t.Name]
		if !ok {
			e = &entry{target: t, interval: iv, next: now}
			if l.opts.LastStart != nil {
				if last, ok := l.opts.LastStart(t.Name); ok && !last.After(now) {
					e.lastStart = last
					e.next = maxTime(now, last.Add(iv))
				}
			}
			l.entries[t.Name] = e
			l.scheduled(e)
			if !first {
				l.log.Info("target added; scheduling it", "target", t.Name, "backend", t.Kind, "interval", iv)
			}
			continue
		}
		e.target = t
		if iv != e.interval {
			e.interval = iv
			if !e.lastStart.IsZero() {
				e.next = e.lastStart.Add(iv)
			}
			l.scheduled(e)
			l.log.Info("target interval changed", "target", t.Name, "interval", iv, "next", e.next)
		}
	}
	for name := range l.entries {
		if seen[name] {
			continue
		}
		delete(l.entries, name)
		if _, busy := l.flights[name]; busy {
			l.log.Info("target removed; its run in flight finishes under the old configuration", "target", name)
		} else {
			l.log.Info("target removed; no longer scheduled", "target", name)
		}
	}
}

// startDue starts due targets that are not running while there are free
// slots, the most overdue first (configuration order breaks ties), so a
// target whose runs are long cannot keep the only slot. Those left
// waiting have their lateness reported.
func (l *loop) startDue(now time.Time) {
	var due []*entry
	for _, t := range l.snap.Config.Targets {
		e := l.entries[t.Name]
		if _, busy := l.flights[t.Name]; !busy && !now.Before(e.next) {
			due = append(due, e)
		}
	}
	slices.SortStableFunc(due, func(a, b *entry) int { return a.next.Compare(b.next) })
	for _, e := range due {
		if len(l.flights) >= l.opts.Concurrency {
			if now.Sub(e.lateShown) >= lateReport {
				e.lateness, e.lateShown = now.Sub(e.next), now
				l.scheduled(e)
			}
			continue
		}
		e.lateness, e.lateShown = now.Sub(e.next), time.Time{}
		e.lastStart, e.next = now, now.Add(e.interval)
		l.scheduled(e)
		t := e.target
		f := &flight{target: t.Name, started: now}
		l.flights[t.Name] = f
		// The goroutine captures this snapshot's agent and target: a
		// reload during the run does not touch it.
		a, target := l.snap.Agent, e.target
		go func() {
			res := a.RunTarget(l.runCtx, target, Options{Progress: f.progress})
			select {
			case l.results <- landed{f: f, res: res}:
			case <-l.gone:
			}
		}()
	}
}

// land records a finished compaction. A run that outlasted its interval
// is next due one interval after it ended, not at once: its own length
// must not make it due again (with the most overdue first, the others
// would still get their turn, but the store would be compacted without
// a pause).
func (l *loop) land(d landed) {
	delete(l.flights, d.f.target)
	r := d.res
	if e, ok := l.entries[r.Target]; ok && !l.stopping {
		if now := time.Now(); e.next.Before(now) && !e.lastStart.After(d.f.started) {
			e.next = now.Add(e.interval)
			l.scheduled(e)
		}
	}
	if r.Outcome == OutcomeLocked {
		if e, ok := l.entries[r.Target]; ok {
			if retry := time.Now().Add(lockedRetry); retry.Before(e.next) {
				e.next = retry
				l.scheduled(e)
			}
		}
	}
	LogResult(context.Background(), l.log, r)
	if l.opts.OnResult != nil {
		l.opts.OnResult(r)
	}
}

func (l *loop) scheduled(e *entry) {
	if l.opts.OnSchedule != nil {
		l.opts.OnSchedule(Schedule{Target: e.target.Name, Next: e.next, Interval: e.interval, Lateness: e.lateness})
	}
}

// sleep is how long the loop may wait: until the next target is due, and
// never longer than half the watchdog interval, nor, while compactions
// run, than the status tick.
func (l *loop) sleep(now time.Time) time.Duration {
	d := time.Hour
	// With every slot taken, a due target can only start once a run
	// lands, which wakes the loop anyway: counting it would spin.
	if len(l.flights) < l.opts.Concurrency {
		for name, e := range l.entries {
			if _, busy := l.flights[name]; !busy {
				d = min(d, e.next.Sub(now))
			}
		}
	}
	if wd := l.opts.Notifier.WatchdogInterval(); wd > 0 {
		d = min(d, wd/2)
	}
	if len(l.flights) > 0 {
		d = min(d, statusTick)
	}
	return max(d, 0)
}

// report refreshes STATUS= and, when a compaction moved since the last
// extension, sends EXTEND_TIMEOUT_USEC=.
func (l *loop) report(now time.Time) {
	moved := false
	var parts []string
	if len(l.flights) > 0 {
		names := make([]string, 0, len(l.flights))
		for n := range l.flights {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			f := l.flights[n]
			f.mu.Lock()
			step := f.step
			moved = moved || f.moved
			f.moved = false
			f.mu.Unlock()
			if step.Phase == "" {
				step.Phase = "starting"
			}
			parts = append(parts, ProgressStatus(n, step, l.position(n), len(l.snap.Config.Targets)))
		}
		if l.stopping {
			parts[0] = "stopping, waiting for " + parts[0]
		}
	} else {
		parts = append(parts, l.idleStatus(now))
	}
	if line := l.opts.Source.Status().StatusLine(); line != "" {
		parts = append(parts, line)
	}
	// A source may add a standing note ("restart needed: …", the daemon's
	// sandbox lacking a new target's directory).
	if n, ok := l.opts.Source.(interface{ StatusNote() string }); ok {
		if note := n.StatusNote(); note != "" {
			parts = append(parts, note)
		}
	}
	if status := strings.Join(parts, "; "); status != l.lastStatus {
		l.lastStatus = status
		l.opts.Notifier.Status(status)
	}
	if moved && now.Sub(l.lastExtend) >= l.opts.ExtendTimeout/4 {
		l.lastExtend = now
		l.opts.Notifier.ExtendTimeout(l.opts.ExtendTimeout)
	}
}

// position is target's 1-based place in the configuration, or 0 once a
// reload removed it.
func (l *loop) position(target string) int {
	for i, t := range l.snap.Config.Targets {
		if t.Name == target {
			return i + 1
		}
	}
	return 0
}

// idleStatus names the next target due:
//
//	idle, 5 targets, next: orders at 14:05:00
func (l *loop) idleStatus(now time.Time) string {
	if len(l.entries) == 0 {
		return "idle, no targets configured"
	}
	var next *entry
	for _, t := range l.snap.Config.Targets {
		if e := l.entries[t.Name]; next == nil || e.next.Before(next.next) {
			next = e
		}
	}
	at := next.next.Format("15:04:05")
	if next.next.Sub(now) >= 24*time.Hour {
		at = next.next.Format("2006-01-02 15:04:05")
	}
	return fmt.Sprintf("idle, %d targets, next: %s at %s", len(l.entries), next.target.Name, at)
}

// shutdown stops starting compactions, gives those in flight the stop
// grace, cancels them shortly before it ends, and returns when they have
// all landed or the grace is over: those still running are then reported
// interrupted and abandoned, for the process to exit.
func (l *loop) shutdown(cancelRuns context.CancelFunc) error {
	l.stopping = true
	l.opts.Notifier.Stopping()
	if len(l.flights) == 0 {
		l.opts.Notifier.Status("stopped")
		return nil
	}
	names := make([]string, 0, len(l.flights))
	for n := range l.flights {
		names = append(names, n)
	}
	slices.Sort(names)
	grace := l.opts.StopGrace
	l.log.Info("stopping: waiting for compactions in flight", "targets", strings.Join(names, ","), "grace", grace)
	l.report(time.Now())
	cancelAt := time.NewTimer(grace - cancelAllowance(grace))
	defer cancelAt.Stop()
	var giveUp <-chan time.Time
	tick := time.NewTicker(statusTick)
	defer tick.Stop()
	for len(l.flights) > 0 {
		l.opts.Notifier.Watchdog()
		select {
		case d := <-l.results:
			l.land(d)
		case <-cancelAt.C:
			l.log.Warn("stop grace nearly over: cancelling compactions in flight", "grace", grace)
			cancelRuns()
			giveUp = time.After(cancelAllowance(grace))
		case <-giveUp:
			for _, n := range slices.Sorted(maps.Keys(l.flights)) {
				e := l.entries[n]
				t := config.Target{Name: n}
				if e != nil {
					t = e.target
				}
				l.land(landed{f: l.flights[n], res: abandoned(t, l.flights[n].started, grace)})
			}
		case <-tick.C:
			// Keep pinging, and extend TimeoutStopSec= while a
			// compaction still moves within the grace.
			l.report(time.Now())
		}
	}
	l.opts.Notifier.Status("stopped")
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
