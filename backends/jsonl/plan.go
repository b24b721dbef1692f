package jsonl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/livefile"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

// plan is the jsonl implementation of backends.Plan.
type plan struct {
	b       *Backend
	f       *os.File // the original store, kept open for Apply
	real    string   // the store's real path
	st      unix.Stat_t
	end     int64             // end of the last complete line planned
	scratch *livefile.Scratch // one entry per line in [0, end)
	policy  backends.Policy
	lines   int64 // complete lines in [0, end)
	unsure  int64 // pyjson.Unsure lines past age retention
	// corruptLen is the corrupt lines' total length: with
	// stats.Quarantined, what their quarantine needs at least.
	corruptLen int64
	cut        int64 // index among age-passed records of the first kept one
	stats      backends.Stats
	// Of the records past age retention: their lines' total length and
	// repr size, and the oldest timestamp. When count and size retention
	// remove none of them, these are the kept store's figures and the
	// scratch file need not be read again.
	keptLen, keptSize int64
	keptOldest        float64
	// Of the records past age retention: how many are future-dated
	// (Policy.Future) and the newest of them.
	future       int64
	newestFuture float64
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
	if p.scratch, err = livefile.NewScratch(b.space, b.env.ScratchDir); err != nil {
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
	k := s.RecordsBefore - s.RemovedAge
	c := int64(0)
	if n, ok := p.policy.CountLimit(); ok && k > n {
		c = k - n
	}
	limit, hasLimit := p.policy.ByteLimit()
	// Pass one over the scratch file: the total size from c on.
	total := p.keptSize
	if hasLimit && c > 0 {
		total = 0
		if err := p.eachKept(func(i int64, e scratch.Entry) bool {
			if i >= c {
				total += e.Size
			}
			return true
		}); err != nil {
			return err
		}
	}
	cut := c
	if hasLimit && total > limit {
		cut = k
		var run int64
		if err := p.eachKept(func(i int64, e scratch.Entry) bool {
			if i < c {
				return true
			}
			if total-run <= limit {
				cut = i
				return false
			}
			run += e.Size
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
	if cut == 0 {
		after += p.keptLen
		oldest = p.keptOldest
		s.Future, s.NewestFuture = p.future, p.newestFuture
	} else if err := p.eachKept(func(i int64, e scratch.Entry) bool {
		if i >= cut {
			after += e.Len
			if e.HasTS && e.TS < oldest {
				oldest = e.TS
			}
			// Future-dated records count only when retention keeps
			// them: max_records and max_total_bytes may remove them.
			if e.HasTS && s.Ages != nil && p.policy.Future(e.TS) {
				s.Future++
				s.NewestFuture = max(s.NewestFuture, e.TS)
			}
		}
		return true
	}); err != nil {
		return err
	}
	if s.Future == 0 {
		s.NewestFuture = 0
	}
	s.BytesAfter = after
	if !math.IsInf(oldest, 1) {
		s.OldestKept, s.HasOldest = oldest, true
	}
	return nil
}

// eachKept calls fn with the index and entry of every record that passed
// age retention, in file order, until fn returns false.
func (p *plan) eachKept(fn func(i int64, e scratch.Entry) bool) error {
	return scratch.EachKept(io.NewSectionReader(p.scratch, 0, math.MaxInt64), p.lines, fn)
}
