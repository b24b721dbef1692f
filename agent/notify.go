package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// sd_notify messages, named as the protocol names them
// (https://www.freedesktop.org/software/systemd/man/sd_notify.html).
const (
	notifyReady     = daemon.SdNotifyReady     // "READY=1"
	notifyReloading = daemon.SdNotifyReloading // "RELOADING=1"
	notifyStopping  = daemon.SdNotifyStopping  // "STOPPING=1"
	notifyWatchdog  = daemon.SdNotifyWatchdog  // "WATCHDOG=1"
	notifyStatus    = "STATUS="
	notifyExtend    = "EXTEND_TIMEOUT_USEC="
	notifyMonotonic = "MONOTONIC_USEC="
)

// DefaultStatusInterval is how often STATUS= may change: systemctl status
// shows the latest one, so more would only load the service manager.
const DefaultStatusInterval = time.Second

// Notifier tells systemd what the process is doing, over the sd_notify
// datagram socket named by $NOTIFY_SOCKET. It wraps go-systemd's
// daemon.SdNotify behind one method per message, so that callers never
// spell protocol strings or pass its positional bool.
//
// Outside systemd ($NOTIFY_SOCKET unset) every method does nothing, and a
// nil *Notifier does nothing too. A failed send is logged, never returned:
// the service manager's view is advisory, and compaction must not stop
// because it cannot be told about it.
//
// Guarantees: messages are sent in the order the methods are called, one
// datagram each. STATUS= is sent at most once per status interval; a
// status given sooner replaces any one still waiting and is sent when
// the interval ends, so the latest status always arrives. WATCHDOG=1 is
// sent only when systemd asked for it ($WATCHDOG_USEC for this PID), and
// only when the work loop calls Watchdog: there is deliberately no ticker
// goroutine, because a ticker would keep pinging while the loop is stuck.
type Notifier struct {
	log            *slog.Logger
	enabled        bool
	statusInterval time.Duration
	watchdog       time.Duration

	mu         sync.Mutex // serializes sends, so datagrams keep call order
	lastStatus time.Time
	pending    string
	hasPending bool
	timer      *time.Timer
	lastPing   time.Time
	warned     bool
	closed     bool
}

// NotifierOptions configure NewNotifier. The zero value is the default.
type NotifierOptions struct {
	// StatusInterval is the least time between two STATUS= messages;
	// zero means DefaultStatusInterval.
	StatusInterval time.Duration
}

// NewNotifier returns a notifier for the socket in $NOTIFY_SOCKET and the
// watchdog in $WATCHDOG_USEC/$WATCHDOG_PID, both read now. log receives
// send failures; nil discards them.
func NewNotifier(log *slog.Logger, opts NotifierOptions) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = DefaultStatusInterval
	}
	n := &Notifier{
		log:            log,
		enabled:        os.Getenv("NOTIFY_SOCKET") != "",
		statusInterval: opts.StatusInterval,
	}
	wd, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("ignoring the watchdog settings systemd passed", "err", err)
	}
	n.watchdog = wd
	return n
}

// Enabled reports whether a service manager listens (NOTIFY_SOCKET set).
func (n *Notifier) Enabled() bool { return n != nil && n.enabled }

// WatchdogInterval is the watchdog timeout systemd set for this process
// (WatchdogSec=), or 0 when there is none. The work loop must call
// Watchdog at least every half of it.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil || !n.enabled {
		return 0
	}
	return n.watchdog
}

// Ready sends READY=1: start-up is complete and the configuration is
// loaded, or a reload announced by Reloading is over (whatever its
// outcome: the service is running again, on the old or the new config).
func (n *Notifier) Ready() { n.send(notifyReady) }

// Reloading sends RELOADING=1 with MONOTONIC_USEC=, the CLOCK_MONOTONIC
// time systemd 253 and later require with it (Type=notify-reload); older
// versions ignore the field. Follow it with Ready when the reload is over.
func (n *Notifier) Reloading() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		n.send(notifyReloading)
		return
	}
	usec := ts.Sec*1_000_000 + ts.Nsec/1_000
	n.send(fmt.Sprintf("%s\n%s%d", notifyReloading, notifyMonotonic, usec))
}

// Stopping sends STOPPING=1: shutdown has begun.
func (n *Notifier) Stopping() { n.send(notifyStopping) }

// ExtendTimeout sends EXTEND_TIMEOUT_USEC=: the current start-up, runtime
// (RuntimeMaxSec=) or stop timeout may run over, as long as the next
// extension, or the end, comes within d. It is how a long compaction that
// is still making progress avoids being killed as stuck; the caller sends
// it only when progress was made.
func (n *Notifier) ExtendTimeout(d time.Duration) {
	if d <= 0 {
		return
	}
	n.send(fmt.Sprintf("%s%d", notifyExtend, d.Microseconds()))
}

// Watchdog sends WATCHDOG=1 when systemd watches this process. Call it
// from the work loop, once per iteration; pings closer together than a
// quarter of the watchdog interval are skipped, so a busy loop does not
// flood the socket.
func (n *Notifier) Watchdog() {
	if n.WatchdogInterval() == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	if !n.lastPing.IsZero() && now.Sub(n.lastPing) < n.watchdog/4 {
		return
	}
	n.lastPing = now
	n.sendLocked(notifyWatchdog)
}

// Status sets the one-line status `systemctl status` shows. It is sent at
// once when the last one is older than the status interval, else at the
// end of the interval (replacing any status still waiting).
func (n *Notifier) Status(msg string) {
	if n == nil || !n.enabled {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := time.Now()
	if wait := n.lastStatus.Add(n.statusInterval).Sub(now); wait > 0 {
		n.pending, n.hasPending = msg, true
		if n.timer == nil {
			n.timer = time.AfterFunc(wait, n.flush)
		}
		return
	}
	n.sendStatusLocked(msg, now)
}

// flush sends the status that waited for its interval.
func (n *Notifier) flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.timer = nil
	if n.hasPending && !n.closed {
		n.sendStatusLocked(n.pending, time.Now())
	}
}

func (n *Notifier) sendStatusLocked(msg string, now time.Time) {
	n.lastStatus = now
	n.pending, n.hasPending = "", false
	n.sendLocked(notifyStatus + msg)
}

// Close sends a status still waiting for its interval, so the last word
// is not lost, and stops the timer. Later calls to Status do nothing.
func (n *Notifier) Close() {
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.timer != nil {
		n.timer.Stop()
		n.timer = nil
	}
	if n.hasPending && !n.closed {
		n.sendStatusLocked(n.pending, time.Now())
	}
	n.closed = true
}

func (n *Notifier) send(state string) {
	if n == nil || !n.enabled {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sendLocked(state)
}

// sendLocked sends one datagram. The first failure is a warning (systemd
// expects notifications it will not get: a Type=notify unit then times
// out); later ones are debug, so a vanished socket does not flood the log.
func (n *Notifier) sendLocked(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		level := slog.LevelDebug
		if !n.warned {
			level, n.warned = slog.LevelWarn, true
		}
		n.log.Log(context.Background(), level, "sd_notify failed", "socket", os.Getenv("NOTIFY_SOCKET"), "err", err)
	}
}

// ProgressStatus is the STATUS= line for one target's progress in a pass
// over several targets:
//
//	orders: rewrite 41% of 2.0 GiB, 3 of 5 targets
//
// index is 1-based; a total of 0 (not known yet) leaves out the share.
func ProgressStatus(target string, s backends.Step, index, count int) string {
	share := ""
	if s.Total > 0 {
		pct := min(100*float64(s.Done)/float64(s.Total), 100)
		of := bytesize.IEC(s.Total)
		if s.Unit == backends.Entries {
			of = fmt.Sprintf("%d entries", s.Total)
		}
		share = fmt.Sprintf(" %.0f%% of %s", pct, of)
	}
	return fmt.Sprintf("%s: %s%s, %d of %d targets", target, s.Phase, share, index, count)
}

// ProgressReporter turns the progress callbacks of a pass over several
// targets into STATUS= lines and, while a compaction makes progress, into
// EXTEND_TIMEOUT_USEC= messages. A stuck compaction reports no progress,
// so its extension lapses and systemd's timeout (TimeoutStartSec=,
// RuntimeMaxSec= or TimeoutStopSec=, whichever runs) kills it; a slow but
// moving one is never killed for being long. It is safe for concurrent use.
type ProgressReporter struct {
	n      *Notifier
	extend time.Duration
	order  map[string]int
	count  int

	mu         sync.Mutex
	lastExtend time.Time
}

// NewProgressReporter reports progress over targets (names, in pass
// order) to n. Each extension grants extend; they are sent at most every
// quarter of it, so a progress pause up to three quarters of extend is
// tolerated. extend <= 0 sends no extension.
func NewProgressReporter(n *Notifier, targets []string, extend time.Duration) *ProgressReporter {
	order := make(map[string]int, len(targets))
	for i, t := range targets {
		order[t] = i + 1
	}
	return &ProgressReporter{n: n, extend: extend, order: order, count: len(targets)}
}

// Progress has the signature of Options.Progress.
func (p *ProgressReporter) Progress(target string, s backends.Step) {
	p.n.Status(ProgressStatus(target, s, p.order[target], p.count))
	if p.extend <= 0 {
		return
	}
	p.mu.Lock()
	now := time.Now()
	due := p.lastExtend.IsZero() || now.Sub(p.lastExtend) >= p.extend/4
	if due {
		p.lastExtend = now
	}
	p.mu.Unlock()
	if due {
		p.n.ExtendTimeout(p.extend)
	}
}
