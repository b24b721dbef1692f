package redisstream_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/redisstream"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// wantFailure checks err is a plain failure (not a skip, not "nothing to
// do") whose message names every one of parts.
func wantFailure(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil || errors.Is(err, backends.ErrLocked) || errors.Is(err, backends.ErrNothingToDo) {
		t.Fatalf("got %v, want a failure", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not name %q", err, p)
		}
	}
}

func TestFailures(t *testing.T) {
	pol := backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](1)}, Now: time.Now()}

	t.Run("Down", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		srv.Stop()
		b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) { t.Timeout = ptr(config.Duration(time.Second)) }))
		_, err := compact(t, b, pol)
		wantFailure(t, err, srv.Addr, "connection refused")
	})

	t.Run("AuthRequired", func(t *testing.T) {
		srv := testutil.StartRedis(t, "--requirepass", "s3cret")
		b := newBackend(t, target([]string{srv.Addr}))
		_, err := compact(t, b, pol)
		wantFailure(t, err, srv.Addr, "NOAUTH")
	})

	t.Run("WrongPassword", func(t *testing.T) {
		srv := testutil.StartRedis(t, "--requirepass", "s3cret")
		b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) { t.Password = "wrong" }))
		_, err := compact(t, b, pol)
		wantFailure(t, err, srv.Addr, "WRONGPASS")
	})

	t.Run("PasswordFile", func(t *testing.T) {
		srv := testutil.StartRedis(t, "--requirepass", "s3cret")
		c := newClient(t, srv.Addr)
		_ = c // the server refuses it: only the backend authenticates
		path := filepath.Join(t.TempDir(), "redis.pass")
		must(t, os.WriteFile(path, []byte("s3cret\n"), 0o600))
		b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) { t.PasswordFile = path }))
		if _, err := compact(t, b, pol); !errors.Is(err, backends.ErrNothingToDo) {
			t.Errorf("with the password file: got %v, want ErrNothingToDo (authenticated, no stream)", err)
		}
		must(t, os.Chmod(path, 0o644))
		_, err := redisstream.New(target([]string{srv.Addr}, func(t *config.Target) { t.PasswordFile = path }), backends.Env{})
		if err == nil || !strings.Contains(err.Error(), "is open to group or others (mode 0644)") {
			t.Errorf("world-readable password file: got %v, want a refusal", err)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		// A server that accepts and never answers.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		b := newBackend(t, target([]string{l.Addr().String()}, func(t *config.Target) { t.Timeout = ptr(config.Duration(200 * time.Millisecond)) }))
		start := time.Now()
		_, err = compact(t, b, pol)
		wantFailure(t, err, l.Addr().String(), "timeout")
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("gave up after %s, want within a few timeouts", d)
		}
	})

	t.Run("WrongType", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		c := newClient(t, srv.Addr)
		must(t, c.Set(context.Background(), "papyra:local:events", "x", 0).Err())
		_, err := compact(t, newBackend(t, target([]string{srv.Addr})), pol)
		wantFailure(t, err, srv.Addr, "papyra:local:events", "not a stream")
	})

	// The server dies between two trim steps: the run fails naming the
	// server and the stream, and what it removed was all below the
	// boundary.
	t.Run("KilledMidRun", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		c := newClient(t, srv.Addr)
		now := oldStream(t, c, "papyra:local:events", 20000)
		b := newBackend(t, target([]string{srv.Addr}, slowTrim, func(t *config.Target) { t.Timeout = ptr(config.Duration(time.Second)) }))
		pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
		pol.Progress = func(s backends.Step) {
			if s.Phase == "trim" && s.Unit == backends.Entries {
				srv.Kill()
			}
		}
		st, err := compact(t, b, pol)
		wantFailure(t, err, srv.Addr, "papyra:local:events")
		if st.Removed() == 0 || st.Removed() >= 20000 {
			t.Errorf("removed before the kill: got %d, want some", st.Removed())
		}
	})

	// Shutdown between two steps, then the next run finishes the job.
	t.Run("CancelledThenResumed", func(t *testing.T) {
		srv := testutil.StartRedis(t)
		c := newClient(t, srv.Addr)
		now := oldStream(t, c, "papyra:local:events", 20000)
		write(t, c, "papyra:local:events", series(now.Add(-time.Second), 10, time.Millisecond))
		b := newBackend(t, target([]string{srv.Addr}, slowTrim, exact))
		ctx, cancel := context.WithCancel(context.Background())
		pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
		pol.Progress = func(s backends.Step) {
			if s.Phase == "trim" && s.Unit == backends.Entries && s.Done >= 5000 {
				cancel()
			}
		}
		p, err := b.Plan(ctx, pol)
		if err != nil {
			t.Fatal(err)
		}
		st, err := b.Apply(ctx, p)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if n := xlen(t, c, "papyra:local:events"); n <= 10 || int64(n) != 20010-st.Removed() {
			t.Fatalf("after the cancelled run: %d entries, removed %d, want some left and the count to add up", n, st.Removed())
		}
		pol.Progress = nil
		if _, err := compact(t, b, pol); err != nil {
			t.Fatal(err)
		}
		if got := readI(t, c, "papyra:local:events"); !sameInts(got, seq(0, 10)) {
			t.Errorf("after the next run: got %v, want the 10 fresh records", got)
		}
	})
}

// TestFailures_TLSAgainstPlain: a target with tls against a server that
// does not speak it fails saying TLS, not "context deadline exceeded"
// after go-redis's retries.
func TestFailures_TLSAgainstPlain(t *testing.T) {
	srv := testutil.StartRedis(t)
	b := newBackend(t, target([]string{srv.Addr}, func(t *config.Target) {
		t.TLS = &config.RedisTLS{}
		t.Timeout = ptr(config.Duration(time.Second))
	}))
	start := time.Now()
	_, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxRecords: ptr[int64](1)}, Now: time.Now()})
	wantFailure(t, err, srv.Addr, "TLS")
	t.Logf("failed after %s: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestFailures_WrongTypeSkipped: under system_id "*", one Papyra key
// that is not a stream is skipped and reported; every healthy stream,
// of that system too, is compacted, and the run fails (exit 1).
func TestFailures_WrongTypeSkipped(t *testing.T) {
	ctx := context.Background()
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	now := oldStream(t, c, "papyra:w:audits", 100)
	oldStream(t, c, "papyra:ok:events", 100)
	must(t, c.HSet(ctx, "papyra:w:events", "f", "v").Err())
	b := newBackend(t, target([]string{srv.Addr}, system("*"), exact))
	st, err := compact(t, b, backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now})
	wantFailure(t, err, srv.Addr, "papyra:w:events", "hash", "not a stream")
	for _, key := range []string{"papyra:w:audits", "papyra:ok:events"} {
		if n := xlen(t, c, key); n != 0 {
			t.Errorf("%s: %d entries left, want 0 (compacted despite the stray key)", key, n)
		}
	}
	if st.Removed() != 200 {
		t.Errorf("removed %d, want 200", st.Removed())
	}
	if c.HGet(ctx, "papyra:w:events", "f").Val() != "v" {
		t.Errorf("the hash was touched")
	}
}

// TestRunDeadline: when run_timeout passes, the run stops between two
// commands and ends cleanly, reporting what it did and owing, as
// run_timeout debt, exactly what is left, and the next run continues.
func TestRunDeadline(t *testing.T) {
	srv := testutil.StartRedis(t)
	c := newClient(t, srv.Addr)
	const key = "papyra:local:events"
	now := oldStream(t, c, key, 3000)
	// The plan reads 3,000 entries, well within the deadline even under
	// -race on a loaded machine; then each trim step of 100 entries
	// waits 2 s, as on a server that has become slow: 60 s without the
	// deadline.
	b := newBackend(t, target([]string{srv.Addr}, slowTrim, exact, func(t *config.Target) {
		t.RunTimeout, t.QuarantineCorrupt = ptr(config.Duration(10*time.Second)), ptr(false)
	}))
	pol := backends.Policy{Retention: config.Retention{MaxAgeSeconds: ptr(60.0)}, Now: now}
	pol.Progress = func(s backends.Step) {
		if s.Phase == "trim" {
			time.Sleep(2 * time.Second)
		}
	}
	st, err := compact(t, b, pol)
	if err != nil {
		t.Fatalf("got %v, want a clean stop", err)
	}
	n := xlen(t, c, key)
	if n == 0 || st.Removed() == 0 || st.Removed()+n != 3000 || st.RecordsAfter != n {
		t.Errorf("stopped with %d left, removed %d, records after %d: want some of each, adding up", n, st.Removed(), st.RecordsAfter)
	}
	var noted bool
	for _, note := range st.Notes {
		noted = noted || strings.Contains(note, "run_timeout")
	}
	if !noted {
		t.Errorf("notes %q: want one saying the run stopped at run_timeout", st.Notes)
	}
	if d := debtOf(st, backends.DebtRunTimeout)[key]; len(st.Debt) != 1 || d.Records != n || d.Bytes != -1 {
		t.Errorf("run_timeout debt: got %+v with %d entries left, want exactly them", st.Debt, n)
	}
	pol.Progress = nil
	b = newBackend(t, target([]string{srv.Addr}, exact))
	if _, err := compact(t, b, pol); err != nil {
		t.Fatal(err)
	}
	if n := xlen(t, c, key); n != 0 {
		t.Errorf("after the next run: %d left, want 0", n)
	}
}
