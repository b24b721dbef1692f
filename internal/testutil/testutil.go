// Package testutil holds the helpers the tests share: Papyra-style writers,
// fixtures, the test-built binary and the rule that CI never skips.
package testutil

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Root returns the repository root.
func Root(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Fixture returns the path of a file under testdata/fixtures.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(Root(t), "testdata", "fixtures", rel)
}

// CopyFile copies src to dst with mode 0644.
func CopyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// AppendPapyra appends one line the way Papyra's JSON backend does: open
// with O_APPEND, one write, close, no lock, no fsync.
func AppendPapyra(path string, line []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SkipOrFail skips the test, unless PAPYRA_TEST_DISALLOW_SKIP is set (CI
// sets it), in which case a missing prerequisite is a failure.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("PAPYRA_TEST_DISALLOW_SKIP") != "" {
		t.Fatalf("prerequisite missing (PAPYRA_TEST_DISALLOW_SKIP is set): "+format, args...)
	}
	t.Skipf(format, args...)
}

var (
	buildMu   sync.Mutex
	buildDirs = map[string]string{}
)

// Binary builds cmd/papyra-compact once per test process and build tags,
// and returns its path.
func Binary(t testing.TB, tags ...string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	key := strings.Join(tags, ",")
	if p, ok := buildDirs[key]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "papyra-compact-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "papyra-compact")
	args := []string{"build", "-o", out}
	if key != "" {
		args = append(args, "-tags", key)
	}
	args = append(args, "./cmd/papyra-compact")
	cmd := exec.Command("go", args...)
	cmd.Dir = Root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v\n%s", err, stderr.String())
	}
	buildDirs[key] = out
	return out
}

// ReadLines returns the lines of path (without newlines).
func ReadLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(data), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// AssertNoSideFiles fails t if dir holds a file the agent creates next to
// a store (temp files, second names of replaced inodes, anchors).
func AssertNoSideFiles(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), fsutil.Prefix) {
			t.Errorf("side file left behind: %s", e.Name())
		}
	}
}

// RawDir describes every file of dir whose name starts with prefix, in
// name order: name, inode, size, mtime and content, for a comparison that
// sees any change at all.
func RawDir(t testing.TB, dir, prefix string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) && !strings.HasPrefix(e.Name(), fsutil.Prefix+prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s ino=%d size=%d mtime=%d.%09d\n%s\n", e.Name(), st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, data)
	}
	return b.String()
}
