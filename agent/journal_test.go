package agent_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sysunix "golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
)

// journald is a test socket that receives the journal's native protocol,
// including entries passed as a file descriptor.
type journald struct {
	path string
	conn *net.UnixConn
}

func newJournald(t *testing.T) *journald {
	t.Helper()
	dir, err := os.MkdirTemp("", "journal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "socket")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &journald{path: path, conn: conn}
}

// entry receives one entry and parses it into its fields (a field sent
// twice keeps both values, newline-joined).
func (j *journald) entry(t *testing.T) map[string]string {
	t.Helper()
	if err := j.conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<10)
	oob := make([]byte, sysunix.CmsgSpace(4))
	n, oobn, _, _, err := j.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("receive journal entry: %v", err)
	}
	data := buf[:n]
	if oobn > 0 {
		data = readPassedFD(t, oob[:oobn])
	}
	fields, err := parseNative(data)
	if err != nil {
		t.Fatalf("parse %q: %v", data, err)
	}
	return fields
}

// readPassedFD reads the memfd an oversized entry travels in, as
// journald does.
func readPassedFD(t *testing.T, oob []byte) []byte {
	t.Helper()
	msgs, err := sysunix.ParseSocketControlMessage(oob)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v (%d)", err, len(msgs))
	}
	fds, err := sysunix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("rights: %v (%d)", err, len(fds))
	}
	f := os.NewFile(uintptr(fds[0]), "memfd")
	defer f.Close()
	seals, err := sysunix.FcntlInt(f.Fd(), sysunix.F_GET_SEALS, 0)
	if err != nil || seals&sysunix.F_SEAL_WRITE == 0 {
		t.Errorf("memfd seals: got %#x (%v), want F_SEAL_WRITE set: journald refuses unsealed memfds", seals, err)
	}
	data, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// parseNative decodes https://systemd.io/JOURNAL_NATIVE_PROTOCOL/.
func parseNative(b []byte) (map[string]string, error) {
	out := map[string]string{}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "=\n")
		if i < 0 {
			return nil, errors.New("field without end")
		}
		name, value := string(b[:i]), ""
		if b[i] == '=' {
			end := bytes.IndexByte(b[i:], '\n')
			if end < 0 {
				return nil, errors.New("value without newline")
			}
			value, b = string(b[i+1:i+end]), b[i+end+1:]
		} else {
			b = b[i+1:]
			if len(b) < 8 {
				return nil, errors.New("short length")
			}
			n := binary.LittleEndian.Uint64(b)
			if uint64(len(b)-8) < n+1 || b[8+n] != '\n' {
				return nil, errors.New("bad binary value")
			}
			value, b = string(b[8:8+n]), b[8+n+1:]
		}
		if old, ok := out[name]; ok {
			value = old + "\n" + value
		}
		out[name] = value
	}
	return out, nil
}

func TestJournalHandler_Fields(t *testing.T) {
	j := newJournald(t)
	h, err := agent.NewJournalHandler(io.Discard, agent.LogOptions{JournalSocket: j.path, Level: slog.LevelDebug})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	log := slog.New(h)
	ctx := context.Background()
	ok := agent.Result{
		Target: "orders", Kind: "jsonl", Outcome: agent.OutcomeOK, Duration: 1500 * time.Millisecond,
		Stats: backends.Stats{RecordsBefore: 2000, RecordsAfter: 980, RemovedAge: 1020, BytesBefore: 5000, BytesAfter: 2000},
	}
	failed := agent.Result{Target: "audit", Kind: "rotating", Outcome: agent.OutcomeFailed,
		Err: fmt.Errorf("rewrite /x: %w", syscall.ENOSPC), Duration: 42 * time.Millisecond}

	tests := []struct {
		name string
		log  func()
		want map[string]string
		// absent are fields that must not be set.
		absent []string
	}{
		{"RunFinished", func() { agent.LogResult(ctx, log, ok) }, map[string]string{
			"MESSAGE":                "run finished target=orders backend=jsonl outcome=success duration=1.5s records_before=2000 records_after=980 records_removed=1020 quarantined=0 bytes_before=5000 bytes_after=2000 bytes_reclaimed=3000",
			"MESSAGE_ID":             agent.MessageIDRunFinished,
			"PRIORITY":               "6",
			"SYSLOG_IDENTIFIER":      "papyra-compact",
			"PAPYRA_TARGET":          "orders",
			"PAPYRA_BACKEND":         "jsonl",
			"PAPYRA_RECORDS_REMOVED": "1020",
			"PAPYRA_BYTES_RECLAIMED": "3000",
			"PAPYRA_DURATION_MS":     "1500",
		}, []string{"PAPYRA_DURATION"}},
		{"RunFailed", func() { agent.LogResult(ctx, log, failed) }, map[string]string{
			"MESSAGE_ID":         agent.MessageIDRunFailed,
			"PRIORITY":           "3",
			"PAPYRA_TARGET":      "audit",
			"PAPYRA_BACKEND":     "rotating",
			"PAPYRA_DURATION_MS": "42",
			"PAPYRA_ERR":         "rewrite /x: no space left on device",
		}, []string{"PAPYRA_RECORDS_REMOVED"}},
		{"NothingToDoIsDebug", func() {
			agent.LogResult(ctx, log, agent.Result{Target: "new", Kind: "jsonl", Outcome: agent.OutcomeNothingToDo})
		}, map[string]string{"PRIORITY": "7", "MESSAGE_ID": agent.MessageIDRunFinished}, nil},
		{"LockedIsInfoWithoutID", func() {
			agent.LogResult(ctx, log, agent.Result{Target: "o", Kind: "jsonl", Outcome: agent.OutcomeLocked, Err: backends.ErrLocked})
		}, map[string]string{"PRIORITY": "6", "PAPYRA_OUTCOME": "skipped_locked"}, []string{"MESSAGE_ID"}},
		{"EmergencyDropHasID", func() { log.Warn(agent.MsgEmergencyDrop, "target", "audit") },
			map[string]string{"MESSAGE_ID": agent.MessageIDEmergencyDrop, "PRIORITY": "4"}, nil},
		{"KeepFreeUnmetHasID", func() { log.Error(agent.MsgKeepFreeUnmet, "free_bytes", 1) },
			map[string]string{"MESSAGE_ID": agent.MessageIDKeepFreeUnmet, "PRIORITY": "3"}, nil},
		{"KeepFreeMetHasID", func() { log.Info(agent.MsgKeepFreeMet, "free_bytes", 2) },
			map[string]string{"MESSAGE_ID": agent.MessageIDKeepFreeMet, "PRIORITY": "6"}, nil},
		{"WarnPriority", func() { log.Warn("w") }, map[string]string{"PRIORITY": "4", "MESSAGE": "w"}, nil},
		{"GroupsAndNames", func() {
			log.With("target", "t1").WithGroup("redis").Info("g", slog.Group("lease", "ttl", 3*time.Second), "shard-id", 7)
		}, map[string]string{
			"PAPYRA_TARGET":             "t1",
			"PAPYRA_REDIS_LEASE_TTL_MS": "3000",
			"PAPYRA_REDIS_SHARD_ID":     "7",
			"MESSAGE":                   "g target=t1 redis.lease.ttl=3s redis.shard-id=7",
		}, nil},
		{"MultiLineValue", func() { log.Error("bad config", "err", errors.New("a.yaml:1: x\na.yaml:2: y")) },
			map[string]string{
				"PAPYRA_ERR": "a.yaml:1: x\na.yaml:2: y",
				"MESSAGE":    "bad config err=\"a.yaml:1: x\\na.yaml:2: y\"",
			}, nil},
		{"CodeLocation", func() { log.Info("here") }, map[string]string{"CODE_FUNC": ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.log()
			got := j.entry(t)
			for k, w := range tt.want {
				g, ok := got[k]
				switch {
				case !ok:
					t.Errorf("%s: missing; got %v", k, got)
				case w != "" && g != w:
					t.Errorf("%s: got %q, want %q", k, g, w)
				}
			}
			for _, k := range tt.absent {
				if g, ok := got[k]; ok {
					t.Errorf("%s: got %q, want absent", k, g)
				}
			}
		})
	}
}

func TestJournalHandler_LargeEntry(t *testing.T) {
	j := newJournald(t)
	h, err := agent.NewJournalHandler(io.Discard, agent.LogOptions{JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	big := strings.Repeat("x", 1<<20) // more than a datagram may carry
	slog.New(h).Info("large", "blob", big)
	if got := j.entry(t)["PAPYRA_BLOB"]; got != big {
		t.Errorf("PAPYRA_BLOB: got %d bytes, want %d", len(got), len(big))
	}
}

func TestJournalHandler_Fallback(t *testing.T) {
	var stderr bytes.Buffer
	h, err := agent.NewJournalHandler(&stderr, agent.LogOptions{JournalSocket: filepath.Join(t.TempDir(), "gone")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	slog.New(h).With("target", "orders").Info("run finished", "records_removed", 3)
	if got, want := stderr.String(), `msg="run finished" target=orders records_removed=3`; !strings.Contains(got, want) {
		t.Errorf("got %v, want it to contain %v", got, want)
	}
}

func TestNewLogHandler(t *testing.T) {
	var st sysunix.Stat_t
	if err := sysunix.Fstat(2, &st); err != nil {
		t.Fatal(err)
	}
	stderrStream := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	tests := []struct {
		name    string
		stream  string
		journal bool
	}{
		{"NoJournalStream", "", false},
		{"OtherStream", "1:2", false},
		{"Malformed", "nonsense", false},
		{"StderrIsJournal", stderrStream, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", tt.stream)
			j := newJournald(t)
			var text bytes.Buffer
			h := agent.NewLogHandler(&text, agent.LogOptions{JournalSocket: j.path})
			slog.New(h).Info("hello", "target", "orders")
			if tt.journal {
				if got := j.entry(t)["PAPYRA_TARGET"]; got != "orders" {
					t.Errorf("journal PAPYRA_TARGET: got %q, want orders", got)
				}
				if text.Len() != 0 {
					t.Errorf("text: got %q, want nothing", text.String())
				}
				return
			}
			if got := text.String(); !strings.Contains(got, "msg=hello target=orders") {
				t.Errorf("text: got %q, want msg=hello target=orders", got)
			}
		})
	}
}
