package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"golang.org/x/sys/unix"
)

// DefaultJournalSocket is journald's native protocol socket.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// MESSAGE_ID values of the catalogued messages, fixed forever so that
// `journalctl MESSAGE_ID=…` finds them across versions and hosts.
const (
	// MessageIDRunFinished marks "run finished": a target's run ended
	// without failing (compacted, nothing to do, or a dry run).
	MessageIDRunFinished = "5fdeba466a02400189832fd0d9994704"
	// MessageIDRunFailed marks "run failed".
	MessageIDRunFailed = "cf95ca8c09c74af6b5039537d4823052"
	// MessageIDEmergencyDrop marks "emergency drop": a segment removed
	// because free space fell below keep_free.
	MessageIDEmergencyDrop = "7caa53ed338848108dfab2c38a7e9ff1"
	// MessageIDKeepFreeUnmet marks "keep_free not met".
	MessageIDKeepFreeUnmet = "75fc40c7ca4548eb881eb4d5e1646960"
	// MessageIDKeepFreeMet marks "keep_free met again": the daemon's
	// word that a file system it reported unmet has room again, so that
	// an alert on the unmet ID can be closed by the same query.
	MessageIDKeepFreeMet = "f288c0ede6204136b4e5dd7d4d4b3177"
)

// Messages with a MESSAGE_ID. LogResult uses them; they are constants so
// that the handler and the callers cannot drift apart.
const (
	MsgRunFinished = "run finished"
	MsgRunFailed   = "run failed"
	MsgRunSkipped  = "run skipped"
	// MsgRunInterrupted: the run was stopped (SIGTERM, SIGINT); not a
	// failure.
	MsgRunInterrupted = "run interrupted"
)

// messageID returns the MESSAGE_ID of a catalogued message.
func messageID(msg string) (string, bool) {
	switch msg {
	case MsgRunFinished:
		return MessageIDRunFinished, true
	case MsgRunFailed:
		return MessageIDRunFailed, true
	case MsgEmergencyDrop:
		return MessageIDEmergencyDrop, true
	case MsgKeepFreeUnmet:
		return MessageIDKeepFreeUnmet, true
	case MsgKeepFreeMet:
		return MessageIDKeepFreeMet, true
	}
	return "", false
}

// fieldPrefix starts every field papyra-compact adds to a journal entry,
// so they never collide with journald's own (which start with "_" or are
// the well-known MESSAGE, PRIORITY, CODE_*…).
const fieldPrefix = "PAPYRA_"

// LogOptions configure NewLogHandler and NewJournalHandler.
type LogOptions struct {
	// Level is the minimum level logged; nil means Info.
	Level slog.Leveler
	// JournalSocket is the journal's native socket; "" means
	// DefaultJournalSocket.
	JournalSocket string
	// Identifier is SYSLOG_IDENTIFIER; "" means "papyra-compact".
	Identifier string
}

// NewLogHandler returns the process's log handler. When stderr is the
// journal's stream (JOURNAL_STREAM names fd 2, as systemd sets it for a
// service whose StandardError= is the journal), records go to the journal
// in its native protocol, with structured fields; otherwise, or when the
// journal socket cannot be opened, they are text on stderr.
//
// The check is journald's own "automatic protocol upgrade": a service
// started from a shell or with stderr redirected keeps plain text, and the
// same binary under systemd gets fields that `journalctl
// PAPYRA_TARGET=orders` can select.
func NewLogHandler(stderr io.Writer, opts LogOptions) slog.Handler {
	if ok, err := journal.StderrIsJournalStream(); ok && err == nil {
		if h, err := NewJournalHandler(stderr, opts); err == nil {
			return h
		}
	}
	return slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: opts.Level})
}

// JournalHandler is a slog.Handler that sends each record as one native
// journal entry (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/):
//
//   - MESSAGE: the message followed by its attributes as key=value, so
//     the plain `journalctl` view says everything;
//   - PRIORITY: from the level (error 3, warning 4, info 6, debug 7);
//   - every attribute as PAPYRA_<KEY> (groups joined with "_", names
//     upper-cased, other characters as "_"); a time.Duration becomes
//     PAPYRA_<KEY>_MS in milliseconds, so "duration" gives
//     PAPYRA_DURATION_MS;
//   - MESSAGE_ID for "run finished", "run failed", "emergency drop" and
//     "keep_free not met";
//   - SYSLOG_IDENTIFIER, and CODE_FILE/CODE_LINE/CODE_FUNC when the record
//     has a caller.
//
// Go's go-systemd journal.Send was rejected for sending: it writes to a
// hard-wired socket path through a process-wide connection, which a test
// cannot point at its own socket, and it prints to stderr on bad field
// names instead of fixing them. The protocol is small enough to own.
//
// A record the journal does not take (socket gone, journald restarting)
// is written as text to the fallback writer instead, so no line is lost;
// under systemd the fallback is stderr, itself a journal stream.
type JournalHandler struct {
	conn     *net.UnixConn
	addr     *net.UnixAddr
	level    slog.Leveler
	ident    string
	fallback slog.Handler
	// attrs are the flattened attributes added by WithAttrs, with the
	// group path they were added under.
	attrs  []flatAttr
	groups []string
}

var _ slog.Handler = (*JournalHandler)(nil)

// NewJournalHandler returns a handler sending to the journal socket in
// opts (journald's by default) and falling back to text on fallback.
func NewJournalHandler(fallback io.Writer, opts LogOptions) (*JournalHandler, error) {
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	if opts.JournalSocket == "" {
		opts.JournalSocket = DefaultJournalSocket
	}
	if opts.Identifier == "" {
		opts.Identifier = "papyra-compact"
	}
	// An unconnected, autobound datagram socket, addressed on every send:
	// a connected one would break for good when journald restarts.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("open journal socket: %w", err)
	}
	return &JournalHandler{
		conn:     conn,
		addr:     &net.UnixAddr{Name: opts.JournalSocket, Net: "unixgram"},
		level:    opts.Level,
		ident:    opts.Identifier,
		fallback: slog.NewTextHandler(fallback, &slog.HandlerOptions{Level: opts.Level}),
	}, nil
}

// Enabled implements slog.Handler.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// WithAttrs implements slog.Handler.
func (h *JournalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.attrs = slices.Clip(h.attrs)
	for _, a := range as {
		c.attrs = flatten(c.attrs, h.groups, a)
	}
	c.fallback = h.fallback.WithAttrs(as)
	return &c
}

// WithGroup implements slog.Handler.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(slices.Clip(h.groups), name)
	c.fallback = h.fallback.WithGroup(name)
	return &c
}

// Handle implements slog.Handler.
func (h *JournalHandler) Handle(ctx context.Context, r slog.Record) error {
	data := encodeEntry(h.fields(r))
	if err := h.send(data); err != nil {
		return h.fallback.Handle(ctx, r)
	}
	return nil
}

// Close releases the handler's socket.
func (h *JournalHandler) Close() error { return h.conn.Close() }

// send writes one entry. An entry larger than a datagram may be goes in a
// sealed memfd passed with SCM_RIGHTS, as sd_journal_send does; journald
// accepts only sealed memfds, so the content cannot change under it.
func (h *JournalHandler) send(data []byte) error {
	_, _, err := h.conn.WriteMsgUnix(data, nil, h.addr)
	if err == nil || !(errors.Is(err, unix.EMSGSIZE) || errors.Is(err, unix.ENOBUFS)) {
		return err
	}
	fd, err := unix.MemfdCreate("papyra-journal", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd for a large journal entry: %w", err)
	}
	defer unix.Close(fd)
	for rest := data; len(rest) > 0; {
		n, err := unix.Write(fd, rest)
		if err != nil {
			return fmt.Errorf("write memfd: %w", err)
		}
		rest = rest[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("seal memfd: %w", err)
	}
	_, _, err = h.conn.WriteMsgUnix(nil, unix.UnixRights(fd), h.addr)
	return err
}

// field is one journal field.
type field struct{ name, value string }

// flatAttr is one attribute after groups are resolved: its key path and
// its resolved value, never a group.
type flatAttr struct {
	path  []string
	value slog.Value
}

// flatten appends a's leaves to dst. Groups nest their keys; an empty
// attribute is dropped, as slog's handlers do.
func flatten(dst []flatAttr, groups []string, a slog.Attr) []flatAttr {
	v := a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return dst
	}
	if v.Kind() == slog.KindGroup {
		sub := groups
		if a.Key != "" {
			sub = append(slices.Clip(groups), a.Key)
		}
		for _, g := range v.Group() {
			dst = flatten(dst, sub, g)
		}
		return dst
	}
	return append(dst, flatAttr{path: append(slices.Clip(groups), a.Key), value: v})
}

// fields returns the journal fields of r: the well-known ones first, then
// one per attribute.
func (h *JournalHandler) fields(r slog.Record) []field {
	attrs := slices.Clip(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		attrs = flatten(attrs, h.groups, a)
		return true
	})

	var msg strings.Builder
	msg.WriteString(r.Message)
	for _, a := range attrs {
		msg.WriteString(" " + strings.Join(a.path, ".") + "=" + quoteText(textValue(a.value)))
	}
	out := []field{
		{"MESSAGE", msg.String()},
		{"PRIORITY", strconv.Itoa(priority(r.Level))},
		{"SYSLOG_IDENTIFIER", h.ident},
	}
	if id, ok := messageID(r.Message); ok {
		out = append(out, field{"MESSAGE_ID", id})
	}
	if r.PC != 0 {
		fr, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		if fr.File != "" {
			out = append(out,
				field{"CODE_FILE", fr.File},
				field{"CODE_LINE", strconv.Itoa(fr.Line)},
				field{"CODE_FUNC", fr.Function})
		}
	}
	for _, a := range attrs {
		name, value := journalName(a.path), journalValue(a.value)
		if a.value.Kind() == slog.KindDuration && !strings.HasSuffix(name, "_MS") {
			name += "_MS"
		}
		out = append(out, field{name, value})
	}
	return out
}

// priority maps a slog level to a syslog priority.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3 // err
	case l >= slog.LevelWarn:
		return 4 // warning
	case l >= slog.LevelInfo:
		return 6 // info
	default:
		return 7 // debug
	}
}

// journalName makes a valid field name from an attribute's key path:
// PAPYRA_ plus the keys joined with "_", upper-cased, any character but
// A-Z, 0-9 and "_" replaced by "_", at most 64 bytes (journald drops
// longer names).
func journalName(path []string) string {
	var b strings.Builder
	b.WriteString(fieldPrefix)
	for i, k := range path {
		if i > 0 {
			b.WriteByte('_')
		}
		for _, c := range strings.ToUpper(k) {
			if c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
				b.WriteRune(c)
			} else {
				b.WriteByte('_')
			}
		}
	}
	name := b.String()
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// journalValue is a field's value: machine-readable (durations in whole
// milliseconds, times in RFC 3339 with nanoseconds).
func journalValue(v slog.Value) string {
	switch v.Kind() {
	case slog.KindDuration:
		return strconv.FormatInt(v.Duration().Milliseconds(), 10)
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	return textValue(v)
}

// textValue is a value as the MESSAGE text shows it.
func textValue(v slog.Value) string {
	if v.Kind() == slog.KindAny {
		if err, ok := v.Any().(error); ok && err != nil {
			return err.Error()
		}
	}
	return v.String()
}

// quoteText quotes s for the MESSAGE text when it would not read as one
// token.
func quoteText(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

// encodeEntry serializes fields in the native protocol: NAME=value lines,
// or, for a value containing a newline, NAME, a newline, the value's
// length as a little-endian uint64, the value and a newline.
func encodeEntry(fields []field) []byte {
	var b []byte
	for _, f := range fields {
		if strings.ContainsRune(f.value, '\n') {
			b = append(b, f.name...)
			b = append(b, '\n')
			b = binary.LittleEndian.AppendUint64(b, uint64(len(f.value)))
			b = append(b, f.value...)
			b = append(b, '\n')
			continue
		}
		b = append(b, f.name...)
		b = append(b, '=')
		b = append(b, f.value...)
		b = append(b, '\n')
	}
	return b
}

// LogResult logs one target's result, with the attributes the journal
// indexes (target, backend, records_removed, bytes_reclaimed, duration):
// "run finished" at info (debug when the store does not exist yet),
// "run skipped" at info when another run held the lock, "run failed" at
// error. The sorting follows the loop's rule: only a failure is an error.
func LogResult(ctx context.Context, log *slog.Logger, r Result) {
	attrs := []slog.Attr{
		slog.String("target", r.Target),
		slog.String("backend", r.Kind),
		slog.String("outcome", r.Outcome.String()),
		slog.Duration("duration", r.Duration),
	}
	level, msg := slog.LevelInfo, MsgRunFinished
	switch r.Outcome {
	case OutcomeFailed, OutcomeRefused:
		level, msg = slog.LevelError, MsgRunFailed
		attrs = append(attrs, slog.Any("err", r.Err))
	case OutcomeLocked:
		msg = MsgRunSkipped
		attrs = append(attrs, slog.Any("err", r.Err))
	case OutcomeInterrupted:
		level, msg = slog.LevelWarn, MsgRunInterrupted
		attrs = append(attrs, slog.Any("err", r.Err))
	case OutcomeNothingToDo:
		level = slog.LevelDebug
	default:
		s := r.Stats
		attrs = append(attrs,
			slog.Int64("records_before", s.RecordsBefore),
			slog.Int64("records_after", s.RecordsAfter),
			slog.Int64("records_removed", s.Removed()),
			slog.Int64("quarantined", s.Quarantined),
			slog.Int64("bytes_before", s.BytesBefore),
			slog.Int64("bytes_after", s.BytesAfter),
			slog.Int64("bytes_reclaimed", s.Reclaimed()))
	}
	log.LogAttrs(ctx, level, msg, attrs...)
}
