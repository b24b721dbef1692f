package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// Headroom is the most free space the agent leaves untouched for others:
// Papyra keeps appending to its stores (O_APPEND, from other processes,
// with no way to wait for space) while the agent works, and an append
// that meets a full file system fails and loses its record. Whatever the
// agent writes must leave 1% of the file system it lands on, and at most
// Headroom, free.
const Headroom = 64 << 20

// Space is the free-space budget of the runs an agent has in flight
// (one run's, or the daemon's several at once).
//
// A run writes several files — the rewrite's temp copy, quarantine,
// scratch, recovery records — and the agent writes state and the
// textfile after it; any of them may share a file system with each other
// and with the store. Each writer claims what it is about to write before
// it writes it. A claim is granted when the file system's free space, less
// what the other claims on the same file system (same st_dev) hold but
// have not written yet, and less the claim, still leaves the headroom
// (see Headroom). Free space is what an unprivileged writer may use
// (f_bavail), whatever the agent's euid: Papyra runs unprivileged, and the
// blocks reserved for root are no use to it.
//
// A nil *Space is an empty budget: its claims are checked against the
// free space alone. A Space is safe for concurrent use.
type Space struct {
	mu     sync.Mutex
	claims map[uint64]map[*Claim]struct{}
	// dip is how much of the headroom its claims may use
	// (AllowIntoHeadroom).
	dip int64
}

// AllowIntoHeadroom lets the budget's claims use up to n bytes of the
// headroom (0 restores the rule). It is for work that writes a little to
// free far more — an emergency drop's recovery record, which must still
// be written when free space is already below the headroom, since the
// drop is what brings it back. A claim still never takes more than is
// free. A nil Space ignores it.
func (s *Space) AllowIntoHeadroom(n int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.dip = max(n, 0)
	s.mu.Unlock()
}

// NewSpace returns an empty budget.
func NewSpace() *Space { return &Space{claims: map[uint64]map[*Claim]struct{}{}} }

// Claim is space reserved in one directory's file system. Its file, once
// attached, is what the bytes go to: what the file has allocated since
// then is written and no longer held (statfs counts it), so a claim holds
// only what is still to come.
type Claim struct {
	s    *Space
	what string // "the rewrite", "the quarantine file", … for messages
	dir  string
	at   string // dir or its nearest existing ancestor, for statfs by name
	dev  uint64
	fd   int // a descriptor of the directory or the file, for fstatfs; -1: dir by name
	need int64
	f    *os.File
	base int64 // f's allocated bytes when attached
	done bool
}

// Claim reserves need bytes for what (a few words: "the quarantine
// file") in directory dir. The error wraps ENOSPC and says how much is
// needed, where, and how much is free.
func (s *Space) Claim(what, dir string, need int64) (*Claim, error) {
	return s.claim(what, dir, dir, need)
}

// ClaimUnder is Claim for a directory that need not exist yet (it is
// created on first use): the file system is that of its nearest existing
// ancestor.
func (s *Space) ClaimUnder(what, dir string, need int64) (*Claim, error) {
	return s.claim(what, dir, existingAncestor(dir), need)
}

func (s *Space) claim(what, dir, at string, need int64) (*Claim, error) {
	c := &Claim{s: s, what: what, dir: dir, at: at, fd: -1}
	var st unix.Stat_t
	if err := unix.Stat(at, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	c.dev = st.Dev
	return c, s.add(c, need)
}

// ClaimAt is Claim for the directory (or file) held by fd, which must stay
// open while the claim is held; dir names it in messages.
func (s *Space) ClaimAt(what string, fd int, dir string, need int64) (*Claim, error) {
	c := &Claim{s: s, what: what, dir: dir, fd: fd}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	c.dev = st.Dev
	return c, s.add(c, need)
}

// Check is Claim and Release at once: it fails when need more bytes in
// dir would leave less than the headroom, holding nothing.
func (s *Space) Check(what, dir string, need int64) error {
	c, err := s.Claim(what, dir, need)
	if err == nil {
		c.Release()
	}
	return err
}

// existingAncestor returns dir or its nearest ancestor that exists.
func existingAncestor(dir string) string {
	dir = filepath.Clean(dir)
	for {
		if _, err := os.Lstat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return dir
		}
		dir = up
	}
}

// add grows c by need after checking that it fits, and registers c.
func (s *Space) add(c *Claim, need int64) error {
	if s != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	var fst unix.Statfs_t
	if err := c.statfs(&fst); err != nil {
		return err
	}
	bs := int64(fst.Bsize)
	var held int64
	if s == nil {
		held = c.pending(bs)
	} else {
		for o := range s.claims[c.dev] { // c among them once registered
			held += o.pending(bs)
		}
	}
	if err := c.fits(&fst, held, need); err != nil {
		return err
	}
	c.need += need
	if s != nil && !c.done {
		if s.claims[c.dev] == nil {
			s.claims[c.dev] = map[*Claim]struct{}{}
		}
		s.claims[c.dev][c] = struct{}{}
	}
	return nil
}

func (c *Claim) statfs(st *unix.Statfs_t) error {
	var err error
	switch {
	case c.f != nil:
		err = unix.Fstatfs(int(c.f.Fd()), st)
	case c.fd >= 0:
		err = unix.Fstatfs(c.fd, st)
	default:
		err = unix.Statfs(c.at, st)
	}
	if err != nil {
		return fmt.Errorf("statfs %s: %w", c.dir, err)
	}
	return nil
}

// Usable returns the bytes of the file system st describes that an
// unprivileged writer may still use (f_bavail, whatever our euid: Papyra
// runs unprivileged, and the blocks reserved for root are not free to
// it) and the file system's size, both counted in f_frsize units as
// statfs(2) defines them. The headroom and the emergency check
// (keep_free) judge free space by it alike.
func Usable(st *unix.Statfs_t) (avail, size int64) {
	unit := st.Frsize
	if unit <= 0 {
		unit = st.Bsize
	}
	return int64(st.Bavail) * unit, int64(st.Blocks) * unit
}

// fits reports, as an error wrapping ENOSPC, whether need more bytes fit
// on the file system st describes when held bytes are already promised.
func (c *Claim) fits(st *unix.Statfs_t, held, need int64) error {
	bs := int64(st.Bsize)
	free, size := Usable(st)
	reserve := min(size/100, Headroom)
	if c.s != nil { // add holds c.s.mu
		reserve = max(reserve-c.s.dip, 0)
	}
	if free-held-roundUp(need, bs) >= reserve {
		return nil
	}
	others := ""
	if held > 0 {
		others = fmt.Sprintf(" (%s of it held for other files the agent is writing there)", bytesize.IEC(held))
	}
	return fmt.Errorf("%s needs %s in %s and must leave %s free there for Papyra's appends, but only %s is free%s: %w",
		c.what, bytesize.IEC(need), c.dir, bytesize.IEC(reserve), bytesize.IEC(free), others, unix.ENOSPC)
}

func roundUp(n, bs int64) int64 {
	if bs <= 0 || n <= 0 {
		return max(n, 0)
	}
	return (n + bs - 1) / bs * bs
}

// pending is what c holds and has not written yet.
func (c *Claim) pending(bs int64) int64 {
	if c.done {
		return 0
	}
	p := roundUp(c.need, bs)
	if c.f != nil {
		var st unix.Stat_t
		if unix.Fstat(int(c.f.Fd()), &st) == nil {
			p -= st.Blocks*512 - c.base
		}
	}
	return max(p, 0)
}

// Attach names the file the claimed bytes go to: from now on what it
// allocates is counted as written, not held. A claim made before its
// file exists is attached once the file is created.
func (c *Claim) Attach(f *os.File) {
	if c.s != nil {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil {
		c.base = st.Blocks * 512
	}
	c.f = f
}

// Grow claims n more bytes.
func (c *Claim) Grow(n int64) error {
	if c.done {
		return fmt.Errorf("%s in %s: claim already released", c.what, c.dir)
	}
	return c.s.add(c, n)
}

// Ensure grows the claim, when needed, to end bytes in all.
func (c *Claim) Ensure(end int64) error {
	if end <= c.need {
		return nil
	}
	return c.Grow(end - c.need)
}

// Release gives back what the claim still holds: its writes are done
// (and counted by the file system) or abandoned. It is idempotent.
func (c *Claim) Release() {
	if c == nil {
		return
	}
	if c.s != nil {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
		delete(c.s.claims[c.dev], c)
	}
	c.done, c.f = true, nil
}

// Writer returns a writer that appends to the claim's attached file f
// and grows the claim before every write that would take the file past
// what is claimed: a write that does not fit fails with the claim's
// ENOSPC error, before anything of it is written.
func (c *Claim) Writer(f *os.File) io.Writer {
	c.Attach(f)
	return &claimWriter{c: c, f: f}
}

type claimWriter struct {
	c *Claim
	f *os.File
}

func (w *claimWriter) Write(p []byte) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(w.f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", w.f.Name(), err)
	}
	if err := w.c.Ensure(st.Size + int64(len(p))); err != nil {
		return 0, err
	}
	return w.f.Write(p)
}

// WriteFileAtomic is the package's WriteFileAtomic after a claim of
// len(data) bytes in path's directory (for what, in messages): a write
// that would eat into the headroom fails before anything is created.
func (s *Space) WriteFileAtomic(what, path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	c, err := s.Claim(what, dir, int64(len(data)))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer c.Release()
	return writeFileAtomic(path, data, perm, nil)
}
