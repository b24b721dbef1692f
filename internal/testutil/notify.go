package testutil

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// NotifySocket is the service manager's end of sd_notify: a unixgram
// socket that records every datagram, in order. Point a process at it
// with NOTIFY_SOCKET=Path (t.Setenv, or the environment of a command).
type NotifySocket struct {
	Path string
	msgs chan string
}

// NewNotifySocket listens on a fresh socket in a temporary directory and
// closes it when the test ends.
func NewNotifySocket(t testing.TB) *NotifySocket {
	t.Helper()
	// sun_path holds 108 bytes; t.TempDir() under a long test name may
	// not fit, so use a short directory of our own.
	dir, err := os.MkdirTemp("", "notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &NotifySocket{Path: path, msgs: make(chan string, 4096)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("notify socket: %v", err)
				}
				close(s.msgs)
				return
			}
			s.msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// Next returns the next datagram, failing the test after timeout.
func (s *NotifySocket) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			t.Fatal("notify socket closed")
		}
		return m
	case <-time.After(timeout):
		t.Fatalf("no sd_notify message within %v", timeout)
		return ""
	}
}

// Poll returns the next datagram, or "" and false when none arrives
// within timeout.
func (s *NotifySocket) Poll(timeout time.Duration) (string, bool) {
	select {
	case m, ok := <-s.msgs:
		return m, ok
	case <-time.After(timeout):
		return "", false
	}
}

// WaitFor reads datagrams until one satisfies match and returns every one
// read, the match last; it fails the test after timeout.
func (s *NotifySocket) WaitFor(t testing.TB, timeout time.Duration, what string, match func(string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var seen []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no sd_notify message %s within %v; got %q", what, timeout, seen)
		}
		m, ok := s.Poll(left)
		if !ok {
			t.Fatalf("no sd_notify message %s within %v (or the socket closed); got %q", what, timeout, seen)
		}
		seen = append(seen, m)
		if match(m) {
			return seen
		}
	}
}

// HasPrefix returns a WaitFor matcher for a message starting with p.
func HasPrefix(p string) func(string) bool {
	return func(m string) bool { return strings.HasPrefix(m, p) }
}
