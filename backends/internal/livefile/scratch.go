package livefile

import (
	"errors"
	"io"
	"os"

	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Scratch is a plan's scratch file (fsutil.Scratch: unnamed, so a kill
// leaves nothing) whose writes are claimed from the run's budget as they
// go: the scratch directory may share a file system with the store, and
// a few bytes per line of a large store add up.
type Scratch struct {
	*os.File
	claim *fsutil.Claim
	w     io.Writer
}

// NewScratch creates a scratch file in dir, claimed from space.
func NewScratch(space *fsutil.Space, dir string) (*Scratch, error) {
	f, err := fsutil.Scratch(dir)
	if err != nil {
		return nil, err
	}
	c, err := space.ClaimAt("the scratch file", int(f.Fd()), dir, 0)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Scratch{File: f, claim: c, w: c.Writer(f)}, nil
}

// Writer appends to the scratch file, failing (ENOSPC, naming the
// directory) before a write that would eat into the headroom.
func (s *Scratch) Writer() io.Writer { return s.w }

// Close closes the file, which frees its space, and releases the claim.
func (s *Scratch) Close() error {
	err := s.File.Close()
	s.claim.Release()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
