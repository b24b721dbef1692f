package rangecopy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/papyra-compact/papyra-compact/backends/internal/rangecopy"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// source writes n pseudo-random bytes to a file and returns it, open.
func source(t *testing.T, n int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, n)
	var seed [32]byte
	seed[0] = byte(n)
	_, _ = rand.NewChaCha8(seed).Read(data)
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// destination creates the file the copies go to as the file backends
// create their replacement files (O_APPEND), then clears the flag.
func destination(t *testing.T) *os.File {
	t.Helper()
	f, err := fsutil.CreateExclusive(filepath.Join(t.TempDir(), "dst"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := fsutil.SetAppend(f, false); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCopier(t *testing.T) {
	type rng struct{ from, n int64 }
	const size = 20 << 20
	tests := []struct {
		name string
		runs []rng
	}{
		{"Nothing", nil},
		{"OneLongRun", []rng{{0, size}}},
		{"LongRunNotAtStart", []rng{{12345, size - 12345 - 99}}},
		{"ShortRunsInterleaved", func() []rng {
			var r []rng
			for off := int64(7); off+200 < size/4; off += 400 {
				r = append(r, rng{off, 200})
			}
			return r
		}()},
		{"MixedLengths", []rng{{0, 10}, {100, 300 << 10}, {(300 << 10) + 200, 5}, {1 << 20, 9 << 20}, {11 << 20, 1}, {12 << 20, 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, data := source(t, size)
			dst := destination(t)
			c := rangecopy.New(context.Background(), src, dst, 3)
			var want []byte
			var to int64
			for _, r := range tt.runs {
				if err := c.Copy(r.from, to, r.n); err != nil {
					t.Fatal(err)
				}
				want = append(want, data[r.from:r.from+r.n]...)
				to += r.n
			}
			if err := c.Wait(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dst.Name())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("destination differs: %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestCopierShortSource: ranges past the source's end are an error, never
// a short file passed off as complete.
func TestCopierShortSource(t *testing.T) {
	for _, n := range []int64{100, 4 << 20} { // gathered and kernel-copied
		src, _ := source(t, 1<<20)
		dst := destination(t)
		c := rangecopy.New(context.Background(), src, dst, 2)
		_ = c.Copy(1<<20-50, 0, n)
		if err := c.Wait(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("copy of %d bytes from 50 before the end: got %v, want io.ErrUnexpectedEOF", n, err)
		}
	}
}

// TestRangeFallback: a destination copy_file_range refuses (here: one
// still opened with O_APPEND) is written through a buffer instead.
func TestRangeFallback(t *testing.T) {
	src, data := source(t, 3<<20)
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "dst"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := rangecopy.Range(f, src, 0, 1000, 2<<20); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data[1000:1000+2<<20]) {
		t.Fatal("destination differs")
	}
}

func TestCopierCancel(t *testing.T) {
	src, _ := source(t, 1<<20)
	dst := destination(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := rangecopy.New(ctx, src, dst, 1)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = c.Copy(0, int64(i)<<20, 1<<20)
	}
	if werr := c.Wait(); !errors.Is(werr, context.Canceled) || !errors.Is(err, context.Canceled) {
		t.Errorf("got Copy %v, Wait %v; want context.Canceled", err, werr)
	}
}
