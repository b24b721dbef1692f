package segments_test

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain doubles as the Papyra writer process of the concurrency and
// crash tests: with PAPYRA_TEST_ROTATING_WRITER set, the test binary
// appends records exactly as RotatingFilePersistence does and exits.
func TestMain(m *testing.M) {
	if spec := os.Getenv("PAPYRA_TEST_ROTATING_WRITER"); spec != "" {
		os.Exit(writerMain(spec))
	}
	os.Exit(m.Run())
}

// writerSpec describes one writer process.
type writerSpec struct {
	Path               string
	MaxBytes, MaxFiles int64
	ID, First, N       int
	Pause              time.Duration // on average after every record
	// Hold, when set, is how long every fourth record waits between the
	// open and the write: Papyra's open-to-write gap, into which the
	// compactor's rename can fall (the record then lands on the old inode).
	Hold time.Duration
	// TS gives record n's timestamp; "" is the wall clock.
	TSBase float64
}

func (s writerSpec) String() string {
	return fmt.Sprintf("%s|%d|%d|%d|%d|%d|%s|%s|%s", s.Path, s.MaxBytes, s.MaxFiles, s.ID, s.First, s.N, s.Pause,
		strconv.FormatFloat(s.TSBase, 'f', -1, 64), s.Hold)
}

func parseWriterSpec(spec string) (writerSpec, error) {
	p := strings.Split(spec, "|")
	if len(p) != 9 {
		return writerSpec{}, fmt.Errorf("bad writer spec %q", spec)
	}
	var s writerSpec
	var errs []error
	var err error
	s.Path = p[0]
	s.MaxBytes, err = strconv.ParseInt(p[1], 10, 64)
	errs = append(errs, err)
	s.MaxFiles, err = strconv.ParseInt(p[2], 10, 64)
	errs = append(errs, err)
	s.ID, err = strconv.Atoi(p[3])
	errs = append(errs, err)
	s.First, err = strconv.Atoi(p[4])
	errs = append(errs, err)
	s.N, err = strconv.Atoi(p[5])
	errs = append(errs, err)
	s.Pause, err = time.ParseDuration(p[6])
	errs = append(errs, err)
	s.TSBase, err = strconv.ParseFloat(p[7], 64)
	errs = append(errs, err)
	s.Hold, err = time.ParseDuration(p[8])
	errs = append(errs, err)
	return s, errors.Join(errs...)
}

// writerMain is the writer process: records First … First+N-1, each with
// payload {"w": ID, "n": n}. Any error (a rotation that found a file
// gone, say) is what Papyra would raise: the record is lost, and the
// process reports it and fails.
func writerMain(spec string) int {
	s, err := parseWriterSpec(spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		return 2
	}
	w := papyraWriter{path: s.Path, maxBytes: s.MaxBytes, maxFiles: s.MaxFiles}
	var debt time.Duration // sleeps shorter than the timer's resolution add up
	for n := s.First; n < s.First+s.N; n++ {
		ts := float64(time.Now().UnixNano()) / 1e9
		if s.TSBase != 0 {
			ts = s.TSBase + float64(n)
		}
		line := rotLine(fmt.Sprintf(`{"w": %d, "n": %d}`, s.ID, n), ts)
		w.hold = 0
		if n%4 == 3 {
			w.hold = s.Hold
		}
		if err := w.append(line); err != nil {
			fmt.Fprintf(os.Stderr, "writer %d: record %d lost: %v\n", s.ID, n, err)
			return 1
		}
		if debt += s.Pause; debt >= time.Millisecond {
			time.Sleep(debt)
			debt = 0
		}
	}
	return 0
}

// rotLine renders a record the way RotatingFilePersistence writes an
// event: ", " and ": " separators, "kind" last, a newline.
func rotLine(payload string, ts float64) string {
	return fmt.Sprintf(`{"system_id": "local", "actor_address": {"system": "local", "actor_id": 1}, "event_type": "ActorStarted", "payload": %s, "timestamp": %s, "kind": "event"}`+"\n",
		payload, pyFloat(ts))
}

// pyFloat prints f as Python's repr does for ordinary timestamps.
func pyFloat(f float64) string {
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// papyraWriter behaves exactly like RotatingFilePersistence._append
// (papyra-formats.md §3.2): mkdir -p; rotate when the active file exists
// and size + line > max_bytes and path.{max_files-1} does not exist, by
// renaming path.{i} → path.{i+1} from the top down (only those that
// exist) and then path → path.1; then open with O_APPEND, write, close.
type papyraWriter struct {
	path               string
	maxBytes, maxFiles int64
	hold               time.Duration // between the open and the write
}

func (w papyraWriter) rotated(i int64) string { return w.path + "." + strconv.FormatInt(i, 10) }

func (w papyraWriter) append(line string) error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return err
	}
	if err := w.maybeRotate(int64(len(line))); err != nil {
		return err
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if w.hold > 0 {
		time.Sleep(w.hold)
	}
	_, err = f.WriteString(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func (w papyraWriter) maybeRotate(n int64) error {
	st, err := os.Stat(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Size()+n <= w.maxBytes {
		return nil
	}
	if w.maxFiles == 1 {
		return os.WriteFile(w.path, nil, 0o644)
	}
	if exists(w.rotated(w.maxFiles - 1)) {
		return nil
	}
	for i := w.maxFiles - 2; i >= 1; i-- {
		if exists(w.rotated(i)) {
			if err := os.Rename(w.rotated(i), w.rotated(i+1)); err != nil {
				return err
			}
		}
	}
	return os.Rename(w.path, w.rotated(1))
}
