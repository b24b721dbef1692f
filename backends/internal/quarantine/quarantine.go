// Package quarantine writes the lines a compaction takes out of a store
// because Papyra could not read them (torn, not JSON, not an object, …).
//
// A quarantine file is JSON lines, one object per corrupt line:
//
//	{"source": "/var/lib/papyra/orders.jsonl", "line": 196, "offset": 40123,
//	 "reason": "not valid JSON", "raw": "not json at all"}
//
// "raw" holds the line's bytes without its newline when they are valid
// UTF-8; otherwise "raw_base64" holds them base64-encoded, so every byte
// survives. The file lives outside the store's directory, is fsynced
// together with its directory before the store is swapped, and is removed
// again if the swap does not happen, so a line is never only in a
// quarantine file that nobody knows about. A kill between the two can leave
// a line both in the store and in quarantine; the next run quarantines it
// again into a new file (duplicated, never lost).
//
// Every byte is claimed from the run's space budget (fsutil.Space) before
// it is written: the quarantine directory may share a file system with
// the store, and a store full of unreadable lines would otherwise fill
// it under Papyra's appends. A write that does not fit fails with ENOSPC
// naming the directory; the caller then discards the file, and the lines
// stay in the store. Reserve claims a lower bound of the whole file
// before the first line, so that a run that cannot fit fails before it
// writes anything.
package quarantine

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Entry is one quarantined line.
type Entry struct {
	Source    string `json:"source"`
	Line      int64  `json:"line"`
	Offset    int64  `json:"offset"`
	Reason    string `json:"reason"`
	Raw       string `json:"raw,omitempty"`
	RawBase64 string `json:"raw_base64,omitempty"`
}

// Writer appends entries to one quarantine file, created on first use.
type Writer struct {
	space     *fsutil.Space
	claim     *fsutil.Claim // nil until Reserve or the first entry
	dir, base string
	now       time.Time
	path      string
	linked    bool // the file has its name (see open)
	f         *os.File
	w         *bufio.Writer
	n         int64
}

// NewWriter prepares a writer for store base in dir, whose writes are
// claimed from space. Nothing is created until the first entry.
func NewWriter(space *fsutil.Space, dir, base string, now time.Time) *Writer {
	return &Writer{space: space, dir: dir, base: base, now: now}
}

// entryOverhead is the least an entry adds to its line's bytes, without
// the source path: `{"source":"","line":0,"offset":0,"reason":""}` and a
// newline ("raw" is left out when the line is empty).
const entryOverhead = len(`{"source":"","line":0,"offset":0,"reason":""}`) + 1

// Estimate is a lower bound of the size of the quarantine file that holds
// n lines of source totalling size bytes, terminators included: a line's
// bytes only grow when escaped or encoded.
func Estimate(source string, n, size int64) int64 {
	if n <= 0 {
		return 0
	}
	return max(0, size-n) + n*int64(entryOverhead+len(source))
}

// Reserve claims need more bytes for the file, before anything is
// written: it fails (ENOSPC, naming the directory) when they would eat
// into the headroom on the quarantine directory's file system, counting
// what the run's other claims there hold.
func (w *Writer) Reserve(need int64) error {
	if w.claim == nil {
		c, err := w.space.ClaimUnder("the quarantine file", w.dir, need)
		if err != nil {
			return fmt.Errorf("quarantine: %w", err)
		}
		w.claim = c
		return nil
	}
	if err := w.claim.Grow(need); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// Path is the quarantine file's path, "" before the first entry.
func (w *Writer) Path() string { return w.path }

// Count is the number of entries written.
func (w *Writer) Count() int64 { return w.n }

func (w *Writer) open() error {
	if w.f != nil {
		return nil
	}
	if err := w.Reserve(0); err != nil {
		return err
	}
	if err := os.MkdirAll(w.dir, 0o750); err != nil {
		return fmt.Errorf("create quarantine directory %s: %w", w.dir, err)
	}
	name := fmt.Sprintf("%s.%s.%s.jsonl", w.base, w.now.UTC().Format("20060102T150405Z"), fsutil.RandomToken()[:8])
	path := filepath.Join(w.dir, name)
	// Unnamed until the first Commit: a run killed before it leaves no
	// quarantine file of lines that are still in the store.
	f, err := fsutil.CreateUnnamed(w.dir, 0o640)
	if err != nil {
		if f, err = fsutil.CreateExclusive(path, 0o640); err != nil {
			return fmt.Errorf("create quarantine file: %w", err)
		}
		w.linked = true
	}
	w.f, w.w, w.path = f, bufio.NewWriterSize(w.claim.Writer(f), 64<<10), path
	return nil
}

// Add quarantines one line held in memory.
func (w *Writer) Add(e Entry, raw []byte) error {
	if err := w.open(); err != nil {
		return err
	}
	if utf8.Valid(raw) {
		e.Raw = string(raw)
	} else {
		e.RawBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode quarantine entry: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.w.Write(b); err != nil {
		return fmt.Errorf("write quarantine file %s: %w", w.path, err)
	}
	w.n++
	return nil
}

// AddStream quarantines a line too long to hold in memory, streaming its
// bytes from r as base64.
func (w *Writer) AddStream(e Entry, r io.Reader) error {
	if err := w.open(); err != nil {
		return err
	}
	head, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode quarantine entry: %w", err)
	}
	// Splice "raw_base64" in as the last member: drop the closing brace.
	if _, err := fmt.Fprintf(w.w, `%s,"raw_base64":"`, head[:len(head)-1]); err != nil {
		return fmt.Errorf("write quarantine file %s: %w", w.path, err)
	}
	enc := base64.NewEncoder(base64.StdEncoding, w.w)
	if _, err := io.Copy(enc, r); err != nil {
		return fmt.Errorf("quarantine line %d: %w", e.Line, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write quarantine file %s: %w", w.path, err)
	}
	if _, err := w.w.WriteString("\"}\n"); err != nil {
		return fmt.Errorf("write quarantine file %s: %w", w.path, err)
	}
	w.n++
	return nil
}

// Commit makes the entries durable: flush, fsync the file and its
// directory. It must return before the store that held the lines is
// replaced.
func (w *Writer) Commit() error {
	if w.f == nil {
		return nil
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("write quarantine file %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync quarantine file %s: %w", w.path, err)
	}
	if !w.linked {
		if err := fsutil.LinkUnnamed(w.f, w.path); err != nil {
			return fmt.Errorf("name quarantine file: %w", err)
		}
		w.linked = true
	}
	return fsutil.SyncDir(w.dir)
}

// Close closes the file, keeping it, and gives back what was reserved
// and not written.
func (w *Writer) Close() error {
	w.claim.Release()
	w.claim = nil
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Discard closes and removes the file: the lines are still in the store.
func (w *Writer) Discard() {
	w.claim.Release()
	w.claim = nil
	if w.f == nil {
		return
	}
	_ = w.f.Close()
	if w.linked {
		_ = os.Remove(w.path)
	}
	w.f, w.path, w.n, w.linked = nil, "", 0, false
}
