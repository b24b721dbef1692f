// Package classify is the first pass of the file backends: it splits a
// store file into lines and classifies each one Python-exactly, on every
// core, handing the verdicts back in file order as scratch entries.
//
// Classifying is the one CPU-bound step of a compaction, so each worker
// reads whole blocks of the file itself and classifies the lines that
// start in them (lines.BlockScanner); the caller's goroutine receives the
// blocks in order. A fixed set of blocks circulates, so memory stays at a
// few blocks per worker whatever the file's size.
package classify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/lines"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
	"github.com/papyra-compact/papyra-compact/backends/internal/scratch"
)

const (
	// BlockSize is how much of the file one block covers. At 1 MiB a
	// block is classified while it is still in the core's cache after
	// the read; 4 MiB measured no faster.
	BlockSize  = 1 << 20
	maxWorkers = 4
)

// Policy is what classification needs of the retention policy.
type Policy struct {
	// WantSize asks for each record's Python repr size (max_total_bytes).
	WantSize bool
	// HasAge and Cutoff: a record whose timestamp is missing, null, NaN
	// or below Cutoff is Aged (Papyra keeps timestamp >= cutoff).
	HasAge bool
	Cutoff float64
	// MaxLine is the longest line classified in memory; a longer one is
	// read again from the file in pieces and classified by a pyjson.Stream,
	// in bounded memory, without its repr size (0: such a record always
	// fits max_total_bytes, so that no record older than it is removed
	// that Papyra would keep).
	MaxLine int
	// MaxDepth is the deepest nesting whose verdict is certain
	// (pyjson.NewClassifier); a valid object nested deeper is Unsure.
	MaxDepth int
	// Dates, when set, is the policy whose clock dates the records:
	// every record goes into Block.Ages, and those that pass age
	// retention and are future-dated (backends.Policy.Future) are
	// counted in Block.Future.
	Dates *backends.Policy
}

// streamChunk is how much of a line longer than MaxLine is read at a
// time to classify it.
const streamChunk = 1 << 20

// Block is one block of the file, classified.
type Block struct {
	Start   int64  // the block covers the lines that start in [Start, Start+BlockSize)
	Entries []byte // one scratch entry per complete line, in order
	Lines   int64  // complete lines
	End     int64  // end of the last of them; 0 when none
	Torn    bool   // the file's last line, without a newline, starts here

	Blank, Corrupt, Records, Aged int64
	// CorruptLen is the corrupt lines' total length, terminators
	// included: what their quarantine needs at least.
	CorruptLen int64
	// Unsure lines that passed age retention (or whose timestamp is
	// unknown): kept in place unless they lie before the retention cut,
	// and not counted among the records.
	Unsure int64
	// Of the records that passed age retention: their lines' total
	// length, their summed repr sizes and the oldest timestamp.
	KeptLen, KeptSize int64
	Oldest            float64
	// MaxTS is the newest finite timestamp of all records.
	MaxTS float64
	// With Policy.Dates: the records by age, and of those that passed
	// age retention, how many are future-dated and the newest of them.
	Ages         backends.Ages
	Future       int64
	NewestFuture float64

	seq int
	err error
}

func (b *Block) reset(seq int, start int64) {
	*b = Block{seq: seq, Start: start, Entries: b.Entries[:0], MaxTS: math.Inf(-1), Oldest: math.Inf(1), NewestFuture: math.Inf(-1)}
}

// timestampNotCompared is the verdict on a record whose timestamp is a
// string, array or object when there is no age retention: only age
// retention compares the timestamp (and raises TypeError on it), so
// without it Papyra reads the record like any other.
func timestampNotCompared(l pyjson.Line) pyjson.Line {
	l.Reason, l.TS, l.Value = pyjson.ReasonNone, pyjson.TSMissing, 0
	l.Class = pyjson.Record
	if l.Deep {
		l.Class = pyjson.Unsure
	}
	return l
}

// UnsureNote is the summary's remark on n Unsure lines.
func UnsureNote(n int64) string {
	return fmt.Sprintf("%d lines nested deeper than %d levels (or too large to judge) left in place and not counted as records: "+
		"whether Papyra reads them depends on its Python version", n, pyjson.DefaultMaxDepth)
}

// worker classifies blocks.
type worker struct {
	pol    Policy
	cls    *pyjson.Classifier
	lines  *lines.BlockScanner
	stream *pyjson.Stream // lines longer than MaxLine
	chunk  []byte
}

// classifyLong classifies the body of a line too long to hold, reading it
// again from r a piece at a time.
func (w *worker) classifyLong(r io.ReaderAt, l lines.Line) (pyjson.Line, error) {
	if w.stream == nil {
		w.stream = pyjson.NewStream(w.pol.MaxDepth)
		w.chunk = make([]byte, streamChunk)
	}
	w.stream.Reset()
	n := l.Len - int64(l.Term)
	for off := int64(0); off < n; {
		c := w.chunk[:min(int64(len(w.chunk)), n-off)]
		if k, err := r.ReadAt(c, l.Off+off); k < len(c) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF // the store shrank under us
			}
			return pyjson.Line{}, fmt.Errorf("read at %d: %w", l.Off+off+int64(k), err)
		}
		w.stream.Write(c)
		off += int64(len(c))
	}
	return w.stream.Line(), nil
}

func (w *worker) classify(r io.ReaderAt, size int64, b *Block) {
	b.err = w.lines.Scan(r, b.Start, b.Start+BlockSize, size, func(l lines.Line) error {
		if !l.Complete {
			b.Torn = true
			return nil
		}
		b.Lines++
		b.End = l.Off + l.Len
		var line pyjson.Line
		if l.TooLong {
			var err error
			if line, err = w.classifyLong(r, l); err != nil {
				return err
			}
		} else {
			line = w.cls.Classify(l.Body(), w.pol.WantSize)
		}
		if line.Reason == pyjson.ReasonBadTimestamp && !w.pol.HasAge {
			line = timestampNotCompared(line)
		}
		var code byte
		switch line.Class {
		case pyjson.Unsure:
			// Whether Papyra reads it at all is unknown: never counted as
			// one of its records, so it cannot displace one. Removing it by
			// age is safe when its timestamp is known (were Papyra to read
			// it, its age retention would remove it too); otherwise it stays.
			code = scratch.Unsure
			if w.pol.HasAge && line.TS != pyjson.TSUnknown && !(line.TS == pyjson.TSNumber && line.Value >= w.pol.Cutoff) {
				b.Records++
				b.Aged++
				code = scratch.Aged
				if w.pol.Dates != nil {
					b.Ages.Add(*w.pol.Dates, line.Value, line.TS == pyjson.TSNumber, l.Len)
				}
			} else {
				b.Unsure++
				b.KeptLen += l.Len
			}
		case pyjson.Blank:
			b.Blank++
			code = scratch.Blank
		case pyjson.Corrupt:
			b.Corrupt++
			b.CorruptLen += l.Len
			code = scratch.Corrupt
		default:
			b.Records++
			hasTS := line.TS == pyjson.TSNumber
			if hasTS && line.Value > b.MaxTS && !math.IsInf(line.Value, 1) {
				b.MaxTS = line.Value
			}
			// Papyra: keep iff timestamp is not None and timestamp >= cutoff.
			// NaN compares false and is dropped; +Inf is kept.
			code = scratch.Keep
			if w.pol.HasAge && !(hasTS && line.Value >= w.pol.Cutoff) {
				b.Aged++
				code = scratch.Aged
			} else {
				b.KeptLen += l.Len
				b.KeptSize += line.ReprSize
				if hasTS && line.Value < b.Oldest {
					b.Oldest = line.Value
				}
				if hasTS && w.pol.Dates != nil && w.pol.Dates.Future(line.Value) {
					b.Future++
					b.NewestFuture = max(b.NewestFuture, line.Value)
				}
			}
			if w.pol.Dates != nil {
				b.Ages.Add(*w.pol.Dates, line.Value, hasTS, l.Len)
			}
		}
		b.Entries = scratch.Append(b.Entries, code, line, l.Len)
		return nil
	})
}

// File classifies the lines of the first size bytes of r and calls each
// with every block, in file order, from the caller's goroutine; the block
// is valid until each returns. It stops at the first read error, error
// from each, or ctx's end, and returns it. A read error is returned as is:
// the caller names the file.
func File(ctx context.Context, r io.ReaderAt, size int64, pol Policy, each func(*Block) error) error {
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	free := make(chan *Block, 2*workers+2)
	for range cap(free) {
		free <- &Block{}
	}
	work := make(chan *Block, cap(free))
	done := make(chan *Block, cap(free))
	var wg sync.WaitGroup
	for range workers {
		w := &worker{pol: pol, cls: pyjson.NewClassifier(pol.MaxDepth), lines: lines.NewBlockScanner(pol.MaxLine)}
		wg.Go(func() {
			for b := range work {
				w.classify(r, size, b)
				done <- b
			}
		})
	}
	go func() { wg.Wait(); close(done) }()

	// The dispatcher hands out blocks while the caller's goroutine takes
	// them back in order; it stops early once something failed.
	stop := make(chan struct{})
	go func() {
		defer close(work)
		for seq, start := 0, int64(0); start < size; seq, start = seq+1, start+BlockSize {
			var b *Block
			select {
			case b = <-free:
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
			b.reset(seq, start)
			work <- b
		}
	}()

	var first error
	pending := map[int]*Block{}
	next := 0
	for b := range done {
		pending[b.seq] = b
		for {
			nb, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if first == nil {
				first = nb.err
			}
			if first == nil {
				first = ctx.Err()
			}
			if first == nil {
				first = each(nb)
			}
			if first != nil {
				select {
				case <-stop:
				default:
					close(stop)
				}
			}
			free <- nb
		}
	}
	if first == nil && int64(next)*BlockSize < size {
		// The dispatcher stopped before the end: ctx is done.
		first = ctx.Err()
		if first == nil {
			first = errors.New("classify: blocks went missing")
		}
	}
	return first
}
