package jsonl

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Scratch entry codes, one entry per complete line of the planned range.
const (
	entryKeep    = 0 // a record that passed age retention: len, size[, ts]
	entryAged    = 1 // a record removed by age retention
	entryBlank   = 2 // a blank line
	entryCorrupt = 3 // a corrupt line: reason byte follows
	entryHasTS   = 0x10
)

// plan is the jsonl implementation of backends.Plan.
type plan struct {
	b       *Backend
	f       *os.File // the original store, kept open for Apply
	real    string   // the store's real path
	st      unix.Stat_t
	end     int64    // end of the last complete line planned
	scratch *os.File // one entry per line in [0, end)
	policy  backends.Policy
	lines   int64 // complete lines in [0, end)
	cut     int64 // index among age-passed records of the first kept one
	stats   backends.Stats
}

func (p *plan) Stats() backends.Stats { return p.stats }

func (p *plan) Close() error {
	var errs []error
	if p.f != nil {
		errs = append(errs, p.f.Close())
		p.f = nil
	}
	if p.scratch != nil {
		errs = append(errs, p.scratch.Close())
		p.scratch = nil
	}
	return errors.Join(errs...)
}

// Plan implements backends.Backend. It reads the store once and writes the
// per-line scratch entries; see the package doc.
func (b *Backend) Plan(ctx context.Context, pol backends.Policy) (backends.Plan, error) {
	f, real, err := b.open()
	if err != nil {
		return nil, err
	}
	p := &plan{b: b, f: f, real: real, policy: pol}
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if err := unix.Fstat(int(f.Fd()), &p.st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", real, err)
	}
	if p.scratch, err = fsutil.Scratch(b.env.ScratchDir); err != nil {
		return nil, err
	}
	if err := p.scan(ctx); err != nil {
		return nil, err
	}
	if err := p.cutAndMeasure(); err != nil {
		return nil, err
	}
	ok = true
	return p, nil
}

// scratchReader iterates over the scratch entries.
type scratchReader struct{ r *bufio.Reader }

type entry struct {
	code   byte
	reason pyjson.Reason
	len    int64
	size   int64
	ts     float64
	hasTS  bool
}

func newScratchReader(f *os.File) (*scratchReader, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind scratch file: %w", err)
	}
	return &scratchReader{r: bufio.NewReaderSize(f, 256<<10)}, nil
}

func (s *scratchReader) next() (entry, error) {
	c, err := s.r.ReadByte()
	if err != nil {
		return entry{}, err
	}
	e := entry{code: c &^ entryHasTS, hasTS: c&entryHasTS != 0}
	switch e.code {
	case entryCorrupt:
		r, err := s.r.ReadByte()
		e.reason = pyjson.Reason(r)
		return e, err
	case entryKeep:
		n, err := binary.ReadUvarint(s.r)
		if err != nil {
			return e, err
		}
		size, err := binary.ReadUvarint(s.r)
		if err != nil {
			return e, err
		}
		e.len, e.size = int64(n), int64(size)
		if e.hasTS {
			var b [8]byte
			if _, err := io.ReadFull(s.r, b[:]); err != nil {
				return e, err
			}
			e.ts = math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
		}
	}
	return e, nil
}

// cutAndMeasure finds the first kept record among those that passed age
// retention, from the scratch entries alone, and measures what is kept.
//
// With K records past age, max_records N removes the first c = K-N.
// max_total_bytes B then keeps the longest suffix of the remaining ones
// whose summed sizes are <= B: Papyra walks newest-first and stops at the
// first record that does not fit, and as sizes are positive that is the
// suffix starting at the smallest index s >= c with total(s..K) <= B.
func (p *plan) cutAndMeasure() error {
	s := &p.stats
	pol := p.policy.Retention
	k := s.RecordsBefore - s.RemovedAge
	c := int64(0)
	if pol.MaxRecords != nil && *pol.MaxRecords > 0 && k > *pol.MaxRecords {
		c = k - *pol.MaxRecords
	}
	// Pass one over the scratch file: the total size from c on.
	var total int64
	if pol.MaxTotalBytes != nil {
		if err := p.eachKept(func(i int64, e entry) bool {
			if i >= c {
				total += e.size
			}
			return true
		}); err != nil {
			return err
		}
	}
	cut := c
	if pol.MaxTotalBytes != nil {
		cut = k
		var run int64
		if err := p.eachKept(func(i int64, e entry) bool {
			if i < c {
				return true
			}
			if total-run <= *pol.MaxTotalBytes {
				cut = i
				return false
			}
			run += e.size
			return true
		}); err != nil {
			return err
		}
	}
	p.cut = cut
	s.RemovedCount = c
	s.RemovedBytes = cut - c
	s.RecordsAfter = k - cut
	// Measure what stays: bytes and the oldest timestamp.
	after := p.st.Size - p.end // the tail is carried over as is
	oldest := math.Inf(1)
	if err := p.eachKept(func(i int64, e entry) bool {
		if i >= cut {
			after += e.len
			if e.hasTS && e.ts < oldest {
				oldest = e.ts
			}
		}
		return true
	}); err != nil {
		return err
	}
	s.BytesAfter = after
	if !math.IsInf(oldest, 1) {
		s.OldestKept, s.HasOldest = oldest, true
	}
	return nil
}

// eachKept calls fn with the index and entry of every record that passed
// age retention, in file order, until fn returns false.
func (p *plan) eachKept(fn func(i int64, e entry) bool) error {
	sr, err := newScratchReader(p.scratch)
	if err != nil {
		return err
	}
	var i int64
	for n := int64(0); n < p.lines; n++ {
		e, err := sr.next()
		if err != nil {
			return fmt.Errorf("read scratch file: %w", err)
		}
		if e.code != entryKeep {
			continue
		}
		if !fn(i, e) {
			return nil
		}
		i++
	}
	return nil
}
