package agent_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// notifyEnv points sd_notify at a fresh socket, without a watchdog unless
// watchdog > 0.
func notifyEnv(t *testing.T, watchdog time.Duration) *testutil.NotifySocket {
	t.Helper()
	s := testutil.NewNotifySocket(t)
	t.Setenv("NOTIFY_SOCKET", s.Path)
	if watchdog > 0 {
		t.Setenv("WATCHDOG_USEC", strconv.FormatInt(watchdog.Microseconds(), 10))
		t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	} else {
		t.Setenv("WATCHDOG_USEC", "")
		t.Setenv("WATCHDOG_PID", "")
	}
	return s
}

func TestNotifier_Messages(t *testing.T) {
	sock := notifyEnv(t, time.Second)
	n := agent.NewNotifier(nil, agent.NotifierOptions{StatusInterval: 100 * time.Millisecond})
	defer n.Close()
	if !n.Enabled() {
		t.Fatal("Enabled: got false, want true with NOTIFY_SOCKET set")
	}
	if got, want := n.WatchdogInterval(), time.Second; got != want {
		t.Errorf("WatchdogInterval: got %v, want %v", got, want)
	}

	n.Ready()
	n.Status("loading")
	n.ExtendTimeout(90 * time.Second)
	n.Watchdog()
	n.Reloading()
	n.Ready()
	n.Stopping()

	want := []string{
		"READY=1",
		"STATUS=loading",
		"EXTEND_TIMEOUT_USEC=90000000",
		"WATCHDOG=1",
		"RELOADING=1\nMONOTONIC_USEC=",
		"READY=1",
		"STOPPING=1",
	}
	for i, w := range want {
		got := sock.Next(t, 2*time.Second)
		if strings.HasSuffix(w, "=") {
			if !strings.HasPrefix(got, w) {
				t.Errorf("message %d: got %q, want %q…", i, got, w)
				continue
			}
			usec, err := strconv.ParseInt(strings.TrimPrefix(got, w), 10, 64)
			if err != nil || usec <= 0 {
				t.Errorf("message %d: MONOTONIC_USEC: got %q, want a positive integer", i, got)
			}
			continue
		}
		if got != w {
			t.Errorf("message %d: got %q, want %q", i, got, w)
		}
	}
	if m, ok := sock.Poll(50 * time.Millisecond); ok {
		t.Errorf("extra message: got %q, want none", m)
	}
}

func TestNotifier_StatusThrottle(t *testing.T) {
	sock := notifyEnv(t, 0)
	const interval = 200 * time.Millisecond
	n := agent.NewNotifier(nil, agent.NotifierOptions{StatusInterval: interval})
	defer n.Close()

	start := time.Now()
	n.Status("one")
	n.Status("two")   // within the interval: waits…
	n.Status("three") // …and is replaced by this one
	if got, want := sock.Next(t, time.Second), "STATUS=one"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got, want := sock.Next(t, 2*time.Second), "STATUS=three"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if elapsed := time.Since(start); elapsed < interval-10*time.Millisecond {
		t.Errorf("second status after %v, want >= %v", elapsed, interval)
	}
	if m, ok := sock.Poll(2 * interval); ok {
		t.Errorf("extra message: got %q, want none", m)
	}

	t.Run("CloseFlushes", func(t *testing.T) {
		n.Status("four")
		n.Status("five")
		n.Close()
		var got []string
		for {
			m, ok := sock.Poll(2 * interval)
			if !ok {
				break
			}
			got = append(got, m)
		}
		if g, w := strings.Join(got, "|"), "STATUS=four|STATUS=five"; g != w && g != "STATUS=five" {
			t.Errorf("got %v, want %v (or only the last)", g, w)
		}
		n.Status("after close")
		if m, ok := sock.Poll(2 * interval); ok {
			t.Errorf("after Close: got %q, want nothing", m)
		}
	})
}

func TestNotifier_Watchdog(t *testing.T) {
	tests := []struct {
		name  string
		usec  string
		pid   string
		want  time.Duration
		pings int
	}{
		{"OurPID", "400000", strconv.Itoa(os.Getpid()), 400 * time.Millisecond, 1},
		{"AnyPID", "400000", "", 400 * time.Millisecond, 1},
		{"OtherPID", "400000", "1", 0, 0},
		{"Off", "", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sock := notifyEnv(t, 0)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			n := agent.NewNotifier(nil, agent.NotifierOptions{})
			if got := n.WatchdogInterval(); got != tt.want {
				t.Errorf("WatchdogInterval: got %v, want %v", got, tt.want)
			}
			// Three calls in a row: pings closer than a quarter of the
			// interval are skipped.
			n.Watchdog()
			n.Watchdog()
			n.Watchdog()
			pings := 0
			for {
				m, ok := sock.Poll(100 * time.Millisecond)
				if !ok {
					break
				}
				if m != "WATCHDOG=1" {
					t.Errorf("got %q, want WATCHDOG=1", m)
				}
				pings++
			}
			if pings != tt.pings {
				t.Errorf("pings: got %v, want %v", pings, tt.pings)
			}
			if tt.pings > 0 {
				time.Sleep(tt.want / 4)
				n.Watchdog()
				if got := sock.Next(t, time.Second); got != "WATCHDOG=1" {
					t.Errorf("after a quarter interval: got %q, want WATCHDOG=1", got)
				}
			}
		})
	}
}

func TestNotifier_OutsideSystemd(t *testing.T) {
	t.Run("NoSocket", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		t.Setenv("WATCHDOG_USEC", "1000000")
		n := agent.NewNotifier(nil, agent.NotifierOptions{})
		exercise(n)
		if n.Enabled() || n.WatchdogInterval() != 0 {
			t.Errorf("got Enabled %v, WatchdogInterval %v; want false, 0", n.Enabled(), n.WatchdogInterval())
		}
	})
	t.Run("Nil", func(t *testing.T) {
		var n *agent.Notifier
		exercise(n)
		if n.Enabled() || n.WatchdogInterval() != 0 {
			t.Errorf("got Enabled %v, WatchdogInterval %v; want false, 0", n.Enabled(), n.WatchdogInterval())
		}
	})
	t.Run("SocketGone", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone.sock"))
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		n := agent.NewNotifier(log, agent.NotifierOptions{})
		exercise(n)
		if got := strings.Count(logs.String(), "level=WARN"); got != 1 {
			t.Errorf("warnings: got %v, want 1 (then debug):\n%s", got, logs.String())
		}
	})
}

func exercise(n *agent.Notifier) {
	n.Ready()
	n.Status("x")
	n.ExtendTimeout(time.Second)
	n.Watchdog()
	n.Reloading()
	n.Stopping()
	n.Close()
}

func TestProgressStatus(t *testing.T) {
	tests := []struct {
		name     string
		step     backends.Step
		index, n int
		want     string
	}{
		{"Issue", backends.Step{Phase: "rewrite", Done: 861e6, Total: 2.1e9}, 3, 5, "orders: rewrite 41% of 2.0 GiB, 3 of 5 targets"},
		{"UnknownTotal", backends.Step{Phase: "scan", Done: 10}, 1, 1, "orders: scan, 1 of 1 targets"},
		{"Bytes", backends.Step{Phase: "scan", Done: 1, Total: 2}, 1, 2, "orders: scan 50% of 2 B, 1 of 2 targets"},
		{"GrewPastTotal", backends.Step{Phase: "rewrite", Done: 1500, Total: 1000}, 2, 2, "orders: rewrite 100% of 1000 B, 2 of 2 targets"},
		{"StreamEntries", backends.Step{Phase: "trim", Unit: backends.Entries, Done: 250, Total: 1000}, 1, 3, "orders: trim 25% of 1000 entries, 1 of 3 targets"},
		// A phase name is never parsed for its unit.
		{"EntriesInName", backends.Step{Phase: "scan entries", Done: 1, Total: 2}, 1, 1, "orders: scan entries 50% of 2 B, 1 of 1 targets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := agent.ProgressStatus("orders", tt.step, tt.index, tt.n); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestProgressReporter(t *testing.T) {
	sock := notifyEnv(t, 0)
	n := agent.NewNotifier(nil, agent.NotifierOptions{StatusInterval: time.Millisecond})
	defer n.Close()
	rep := agent.NewProgressReporter(n, []string{"a", "b"}, time.Hour)
	rep.Progress("b", backends.Step{Phase: "scan", Done: 5, Total: 10})
	time.Sleep(5 * time.Millisecond)
	rep.Progress("b", backends.Step{Phase: "scan", Done: 6, Total: 10}) // no second extension within extend/4

	extend := regexp.MustCompile(`^EXTEND_TIMEOUT_USEC=3600000000$`)
	got := []string{sock.Next(t, time.Second), sock.Next(t, time.Second), sock.Next(t, time.Second)}
	if got[0] != "STATUS=b: scan 50% of 10 B, 2 of 2 targets" || !extend.MatchString(got[1]) ||
		got[2] != "STATUS=b: scan 60% of 10 B, 2 of 2 targets" {
		t.Errorf("got %q, want status, extension, status", got)
	}
	if m, ok := sock.Poll(50 * time.Millisecond); ok {
		t.Errorf("extra message: got %q, want none", m)
	}
}
