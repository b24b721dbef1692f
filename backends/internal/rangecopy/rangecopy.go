// Package rangecopy copies the surviving byte ranges of a store into its
// replacement. Long ranges never pass through the agent: copy_file_range(2)
// moves them inside the kernel (on a reflinking file system it may even
// share the blocks), which is what makes a rewrite cost about what cp
// costs; short ones are gathered through a buffer. Ranges are copied by a
// few goroutines at once, each to its own offset in the destination, so
// the kernel's page-cache work spreads over the cores; the caller learns
// of the first error when it waits.
package rangecopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// kernelMin is the shortest range handed to copy_file_range. Each call
	// costs a couple of microseconds whatever its length, so when survivors
	// and removed records alternate line by line (ages out of order, or
	// count and size retention on interleaved kinds) the ranges are
	// gathered instead: one pread of the span, the survivors moved
	// together in memory, one pwrite.
	kernelMin = 256 << 10
	// span is the most source bytes one gather job reads, and so the size
	// of each worker's buffer.
	span = 4 << 20
	// chunk is the most one kernel job copies: a long run is split so that
	// every worker has a share and cancellation is seen between chunks.
	chunk = 8 << 20
)

// run is a range of the source to keep.
type run struct{ from, n int64 }

// job copies its runs, back to back, to the destination at offset to:
// one run of any length inside the kernel, or several short ones within
// span source bytes through a buffer.
type job struct {
	to     int64
	runs   []run
	gather bool
}

// Copier copies ranges of src to dst in parallel. Use New, Copy any number
// of times from one goroutine, then Wait exactly once.
type Copier struct {
	ctx      context.Context
	src, dst *os.File
	jobs     chan job
	wg       sync.WaitGroup
	pending  job   // short runs being gathered by the caller's goroutine
	pendLen  int64 // their total length

	mu  sync.Mutex
	err error
}

// New starts workers goroutines copying from src to dst.
func New(ctx context.Context, src, dst *os.File, workers int) *Copier {
	c := &Copier{ctx: ctx, src: src, dst: dst, jobs: make(chan job, 2*workers)}
	for range max(workers, 1) {
		c.wg.Go(c.work)
	}
	return c
}

// Copy copies n bytes at src offset from to dst offset to, sooner or
// later. It returns the first error any copy has met so far, after which
// the caller should stop copying and Wait.
func (c *Copier) Copy(from, to, n int64) error {
	if err := c.Err(); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	if n >= kernelMin {
		if err := c.flush(); err != nil {
			return err
		}
		for n > 0 {
			k := min(n, chunk)
			if err := c.queue(job{to: to, runs: []run{{from, k}}}); err != nil {
				return err
			}
			from, to, n = from+k, to+k, n-k
		}
		return nil
	}
	if p := &c.pending; len(p.runs) > 0 && (to != p.to+c.pendLen || from+n-p.runs[0].from > span) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if len(c.pending.runs) == 0 {
		c.pending = job{to: to, gather: true, runs: make([]run, 0, 64)}
	}
	c.pending.runs = append(c.pending.runs, run{from, n})
	c.pendLen += n
	return nil
}

// flush queues the gathered short runs.
func (c *Copier) flush() error {
	if len(c.pending.runs) == 0 {
		return nil
	}
	j := c.pending
	c.pending, c.pendLen = job{}, 0
	return c.queue(j)
}

func (c *Copier) queue(j job) error {
	select {
	case c.jobs <- j:
		return c.Err()
	case <-c.ctx.Done():
		c.fail(c.ctx.Err())
		return c.ctx.Err()
	}
}

// Wait waits for every copy and returns the first error.
func (c *Copier) Wait() error {
	if err := c.flush(); err != nil {
		c.fail(err)
	}
	close(c.jobs)
	c.wg.Wait()
	return c.Err()
}

// Err returns the first error met so far.
func (c *Copier) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Copier) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

func (c *Copier) work() {
	var buf []byte
	for j := range c.jobs {
		if c.Err() != nil {
			continue // drain, so that Copy never blocks
		}
		if err := c.ctx.Err(); err != nil {
			c.fail(err)
			continue
		}
		var (
			n   int64
			err error
		)
		if j.gather {
			if buf == nil {
				buf = make([]byte, span)
			}
			n, err = c.gather(j, buf)
		} else {
			n, err = j.runs[0].n, Range(c.dst, c.src, j.to, j.runs[0].from, j.runs[0].n)
		}
		if err != nil {
			c.fail(err)
			continue
		}
		// Start writing the pages back now, while the rest is copied, so
		// that the caller's fsync finds little left to do. Only a hint:
		// the fsync is what makes the data durable.
		_ = unix.SyncFileRange(int(c.dst.Fd()), j.to, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}

// gather reads the span of j's runs, moves the runs together and writes
// them at j.to. It returns how many bytes it wrote.
func (c *Copier) gather(j job, buf []byte) (int64, error) {
	base := j.runs[0].from
	last := j.runs[len(j.runs)-1]
	b := buf[:last.from+last.n-base]
	if k, err := c.src.ReadAt(b, base); k < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("read %s at %d: %w", c.src.Name(), base+int64(k), err)
	}
	w := 0
	for _, r := range j.runs {
		w += copy(b[w:], b[r.from-base:r.from-base+r.n])
	}
	if err := pwrite(c.dst, b[:w], j.to); err != nil {
		return 0, fmt.Errorf("write %s at %d: %w", c.dst.Name(), j.to, err)
	}
	return int64(w), nil
}

// Range copies n bytes of src at offset from into dst at offset to,
// inside the kernel when it can and through a buffer when it cannot
// (another file system, an old kernel, a file system without support).
// A source that ends before from+n is an error: the caller planned those
// bytes, so the file was truncated under it.
func Range(dst, src *os.File, to, from, n int64) error {
	done, err := kernelCopy(dst, src, to, from, n)
	if err == nil && done == n {
		return nil
	}
	if err != nil && !fallback(err) {
		return fmt.Errorf("copy %d bytes of %s at %d to %s: %w", n-done, src.Name(), from+done, dst.Name(), err)
	}
	// The rest goes through a buffer: copy_file_range refused, or it
	// stopped early, which it also does on file systems that do not
	// implement it (then the buffer copy goes on; at a real end of file
	// it fails with io.ErrUnexpectedEOF).
	if err := bufferCopy(dst, src, to+done, from+done, n-done); err != nil {
		return fmt.Errorf("copy %s at %d to %s: %w", src.Name(), from+done, dst.Name(), err)
	}
	return nil
}

// bufferCopy is the fallback: pread and pwrite through a buffer. It calls
// pwrite(2) itself because os.File refuses WriteAt on a file opened with
// O_APPEND even after the flag was cleared (see fsutil.SetAppend).
func bufferCopy(dst, src *os.File, to, from, n int64) error {
	buf := make([]byte, min(n, 1<<20))
	for n > 0 {
		k, err := src.ReadAt(buf[:min(n, int64(len(buf)))], from)
		if k == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if err := pwrite(dst, buf[:k], to); err != nil {
			return err
		}
		from, to, n = from+int64(k), to+int64(k), n-int64(k)
	}
	return nil
}

// pwrite writes all of p to f at off.
func pwrite(f *os.File, p []byte, off int64) error {
	for len(p) > 0 {
		w, err := unix.Pwrite(int(f.Fd()), p, off)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		p, off = p[w:], off+int64(w)
	}
	return nil
}

// kernelCopy copies with copy_file_range until n bytes are done, a call
// copies nothing (done < n, nil error) or a call fails.
func kernelCopy(dst, src *os.File, to, from, n int64) (done int64, err error) {
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for done < n {
		in, out := from+done, to+done
		k, err := unix.CopyFileRange(sfd, &in, dfd, &out, int(min(n-done, 1<<30)), 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return done, err
		}
		if k == 0 {
			return done, nil
		}
		done += int64(k)
	}
	return done, nil
}

// fallback reports whether err means "copy_file_range cannot do this
// here", as opposed to a real I/O error such as ENOSPC or EIO.
func fallback(err error) bool {
	for _, e := range []error{syscall.ENOSYS, syscall.EXDEV, syscall.EINVAL, syscall.EOPNOTSUPP, syscall.EBADF, syscall.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
