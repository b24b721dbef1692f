package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/testutil"
)

// journalSink is a unixgram socket standing in for journald's: it keeps
// every datagram (native journal entries) the agent's journal writer
// sends.
type journalSink struct {
	path string
	mu   sync.Mutex
	buf  bytes.Buffer
	conn *net.UnixConn
	done chan struct{}
}

func newJournalSink(t *testing.T, dir string) *journalSink {
	t.Helper()
	s := &journalSink{path: filepath.Join(dir, "journal.sock"), done: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s.conn = conn
	go func() {
		defer close(s.done)
		b := make([]byte, 1<<20)
		for {
			n, err := conn.Read(b)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.buf.Write(b[:n])
			s.buf.WriteByte('\n')
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

// flush waits until every entry sent before it has been read: datagrams
// on one socket are received in the order they were sent.
func (s *journalSink) flush(t *testing.T) {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("END-OF-TEST")); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(s.String(), "END-OF-TEST") {
		select {
		case <-s.done:
			t.Fatal("journal socket closed")
		case <-time.After(time.Millisecond):
		}
	}
}

func (s *journalSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

// TestSecrets_NeverShown runs check, run (also in-process into a journal
// socket, with the agent's own journal writer), status and status --json
// against a real redis-server that requires a password, given through a
// password_file: with the right password, a wrong one, an unreachable
// server, and configurations that are invalid around the password. No log
// line, journal entry, status output, state file, textfile, lock,
// quarantine or error message may contain a password.
func TestSecrets_NeverShown(t *testing.T) {
	secret, wrong, inline := randomSecret(t, "right-"), randomSecret(t, "wrong-"), randomSecret(t, "inline-")
	secrets := []string{secret, wrong, inline}
	srv := testutil.StartRedis(t, "--requirepass", secret)

	// Records for the run to trim: age retention removes the old half.
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: secret})
	defer rc.Close()
	for i := 1; i <= 20; i++ {
		id := fmt.Sprintf("%d-0", int64(1794000000000)+int64(i)*100_000_000)
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: "papyra:local:events", ID: id,
			Values: []any{"data", `{"kind": "event", "timestamp": 1.0}`}}).Err(); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	right := write("right.pass", secret+"\n", 0o600)
	wrongFile := write("wrong.pass", wrong+"\n", 0o600)
	closed := func() string { // a port nothing listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}()
	header := "state_dir: " + dir + "/state\nlock_dir: " + dir + "/lock\nquarantine_dir: " + dir + "/q\n" +
		"metrics:\n  textfile: " + dir + "/metrics/papyra.prom\ndefaults:\n  retention:\n    max_age: 1d\ntargets:\n"
	target := func(lines ...string) string {
		return header + "  - name: r\n    kind: redis\n    " + strings.Join(lines, "\n    ") + "\n"
	}
	cases := []struct {
		name  string
		yaml  string
		valid bool
	}{
		{"Success", target("url: redis://"+srv.Addr+"/0", "password_file: "+right), true},
		{"WrongPassword", target("url: redis://"+srv.Addr+"/0", "password_file: "+wrongFile), true},
		{"WrongInlinePassword", target("url: redis://"+srv.Addr+"/0", "password: "+inline), true},
		{"WrongPasswordInURL", target("url: redis://:" + inline + "@" + srv.Addr + "/0"), true},
		{"Unreachable", target("url: redis://"+closed+"/0", "password_file: "+right), true},
		{"UnreachableAddrs", target("addrs: ["+closed+"]", "password_file: "+right), true},
		{"BadPasswordAndFile", target("url: redis://"+srv.Addr+"/0", "password: "+inline, "password_file: "+right), false},
		{"BadURLPasswordAndAddrs", target("url: redis://:"+inline+"@"+srv.Addr+"/0", "addrs: ["+srv.Addr+"]"), false},
		{"BadURLPasswordAndPasswordFile", target("url: redis://u:"+inline+"@"+srv.Addr+"/0", "password_file: "+right), false},
		{"BadPasswordType", target("password: [" + inline + "]"), false},
		{"BadPasswordMapping", target("password: {" + inline + ": 1}"), false},
		{"BadPasswordTypo", target("pasword: " + inline), false},
		{"BadPasswordUnclosedQuote", target(`password: "` + inline), false},
		{"BadPasswordNotForKind", header + "  - {name: j, kind: memory, password: " + inline + "}\n", false},
		{"BadPasswordDuplicate", target("password: "+inline, "password: "+inline+"x"), false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg := write("compact.yaml", tt.yaml, 0o644)
			var seen strings.Builder
			for _, args := range [][]string{
				{"check", "--config", cfg},
				{"run", "--config", cfg, "--log-level", "debug", "--now", "1795000000"},
				{"run", "--config", cfg, "--log-level", "debug", "--dry-run"},
				{"status", "--config", cfg},
				{"status", "--config", cfg, "--json"},
			} {
				code, stdout, stderr := cli(t, args...)
				fmt.Fprintf(&seen, "$ %s (exit %d)\n%s%s", strings.Join(args, " "), code, stdout, stderr)
				if args[0] == "check" && (code == 0) != tt.valid {
					t.Errorf("check: exit %d, want valid=%v:\n%s%s", code, tt.valid, stdout, stderr)
				}
			}
			// The daemon's and the timer's journal entries, written by
			// the agent's own journal writer.
			sink := newJournalSink(t, t.TempDir())
			if c, err := config.Load(cfg); err == nil {
				h, err := agent.NewJournalHandler(&seen, agent.LogOptions{Level: slog.LevelDebug, JournalSocket: sink.path})
				if err != nil {
					t.Fatal(err)
				}
				log := slog.New(h)
				results, err := agent.New(c, all.Backends(), log).RunOnce(ctx, agent.Options{
					OnResult: func(r agent.Result) { agent.LogResult(ctx, log, r) },
				})
				h.Close()
				fmt.Fprintf(&seen, "in-process run: %v\n", err)
				for _, r := range results {
					fmt.Fprintf(&seen, "%s\n%v\n", agent.Summary(r), r.Err)
				}
			} else {
				fmt.Fprintf(&seen, "load: %v\n", err)
			}
			sink.flush(t)
			seen.WriteString(sink.String())
			// Everything the agent wrote.
			_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || p == right || p == wrongFile || p == cfg {
					return nil
				}
				b, _ := os.ReadFile(p)
				fmt.Fprintf(&seen, "== %s\n%s\n", p, b)
				return nil
			})
			out := seen.String()
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("a password (%s…) is shown:\n%s", s[:6], out)
				}
			}
			if !strings.Contains(out, "$ run") || (tt.valid && !strings.Contains(sink.String(), "PAPYRA_TARGET")) {
				t.Errorf("the test saw nothing to check:\n%s", out)
			}
			if tt.name == "Success" && !strings.Contains(out, "r: success") {
				t.Errorf("the success path did not succeed:\n%s", out)
			}
			if strings.HasPrefix(tt.name, "Wrong") && !strings.Contains(out, "r: FAILED") {
				t.Errorf("the wrong password did not fail:\n%s", out)
			}
		})
	}
	if n, err := rc.XLen(ctx, "papyra:local:events").Result(); err != nil || n >= 20 {
		t.Errorf("the successful runs trimmed nothing: %d entries left (%v)", n, err)
	}
}
