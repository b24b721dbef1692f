package jsonl

import (
	"bufio"
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

// Classifying lines is the one CPU-bound step, so the first pass spreads
// it over the machine's cores: each worker reads whole blocks of the store
// itself and classifies the lines that start in them (lines.BlockScanner),
// and a collector writes the blocks' scratch entries in file order. A fixed
// set of batches circulates, so memory stays at about a few blocks per
// worker whatever the store's size. A block of 1 MiB is classified while
// it is still in the core's cache after the read; 4 MiB measured no
// faster.
const (
	blockSize  = 1 << 20
	maxWorkers = 4
)

// batch is one block of the store and, once classified, its scratch
// entries and counts.
type batch struct {
	seq                           int
	start                         int64
	entry                         []byte // the scratch entries, filled by a worker
	lines                         int64  // complete lines starting in the block
	end                           int64  // end of the last of them; 0 when none
	torn                          bool   // the store's last line, without a newline, starts here
	blank, corrupt, records, aged int64
	keptLen, keptSize             int64   // lines and repr sizes of the records past age retention
	maxTS, oldest                 float64 // newest timestamp of all records, oldest of those past age
	err                           error
}

func (b *batch) reset(seq int, start int64) {
	*b = batch{seq: seq, start: start, entry: b.entry[:0], maxTS: math.Inf(-1), oldest: math.Inf(1)}
}

// classifier turns lines into scratch entries under one policy.
type classifier struct {
	cls      *pyjson.Classifier
	lines    *lines.BlockScanner
	wantSize bool
	hasAge   bool
	cutoff   float64
}

// classify scans and classifies the lines starting in b's block of the
// store's first size bytes.
func (c *classifier) classify(r io.ReaderAt, size int64, b *batch) {
	b.err = c.lines.Scan(r, b.start, b.start+blockSize, size, func(l lines.Line) error {
		if !l.Complete {
			b.torn = true // carried over verbatim by Apply
			return nil
		}
		b.lines++
		b.end = l.Off + l.Len
		var line pyjson.Line
		if l.TooLong {
			line = pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonTooLong}
		} else {
			line = c.cls.Classify(l.Body(), c.wantSize)
		}
		var code byte
		switch line.Class {
		case pyjson.Blank:
			b.blank++
			code = scratch.Blank
		case pyjson.Corrupt:
			b.corrupt++
			code = scratch.Corrupt
		default:
			b.records++
			hasTS := line.TS == pyjson.TSNumber
			if hasTS && line.Value > b.maxTS && !math.IsInf(line.Value, 1) {
				b.maxTS = line.Value
			}
			// Papyra: keep iff timestamp is not None and timestamp >= cutoff.
			// NaN compares false and is dropped; +Inf is kept.
			code = scratch.Keep
			if c.hasAge && !(hasTS && line.Value >= c.cutoff) {
				b.aged++
				code = scratch.Aged
			} else {
				b.keptLen += l.Len
				b.keptSize += line.ReprSize
				if hasTS && line.Value < b.oldest {
					b.oldest = line.Value
				}
			}
		}
		b.entry = scratch.Append(b.entry, code, line, l.Len)
		return nil
	})
}

// scan is the first pass: classify every complete line of [0, size) and
// write its scratch entry.
func (p *plan) scan(ctx context.Context) error {
	size := p.st.Size
	pol := p.policy.Retention
	p.stats.BytesBefore = size
	p.keptOldest = math.Inf(1)
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	free := make(chan *batch, 2*workers+2)
	for range cap(free) {
		free <- &batch{}
	}
	work := make(chan *batch, cap(free))
	done := make(chan *batch, cap(free))
	var wg sync.WaitGroup
	for range workers {
		c := &classifier{cls: pyjson.NewClassifier(maxDepth), lines: lines.NewBlockScanner(maxLine), wantSize: pol.MaxTotalBytes != nil}
		if pol.MaxAgeSeconds != nil {
			c.hasAge = true
			c.cutoff = float64(p.policy.Now.UnixNano())/1e9 - *pol.MaxAgeSeconds
		}
		wg.Go(func() {
			for b := range work {
				c.classify(p.f, size, b)
				done <- b
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	collected := make(chan error, 1)
	maxTS := math.Inf(-1)
	go func() { collected <- p.collect(done, free, &maxTS) }()

	var dispatchErr error
	for seq, start := 0, int64(0); start < size; seq, start = seq+1, start+blockSize {
		if dispatchErr = p.b.checkCtx(ctx); dispatchErr != nil {
			break
		}
		b := <-free
		b.reset(seq, start)
		work <- b
	}
	close(work)
	if err := errors.Join(dispatchErr, <-collected); err != nil {
		return err
	}
	s := &p.stats
	if pol.MaxAgeSeconds != nil && s.RecordsBefore > 0 && maxTS < minUnixTime {
		return fmt.Errorf("%w: age retention on %s: the newest timestamp is %.3f, which is seconds since boot, not Unix time. "+
			"Papyra's ActorSystem defaults to anyio.current_time() (a monotonic clock); with it, max_age would delete every record. "+
			"Fix: create the ActorSystem with time_fn=time.time, or drop max_age/max_age_seconds for this target",
			backends.ErrUnsafe, p.real, maxTS)
	}
	return nil
}

// collect writes the classified batches' entries to the scratch file in
// file order and adds up their counts. It drains done even after an
// error, so that no worker blocks.
func (p *plan) collect(done <-chan *batch, free chan<- *batch, maxTS *float64) error {
	w := bufio.NewWriterSize(p.scratch, 256<<10)
	pending := map[int]*batch{}
	next := 0
	var firstErr error
	s := &p.stats
	for b := range done {
		pending[b.seq] = b
		for {
			nb, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if nb.err != nil && firstErr == nil {
				firstErr = fmt.Errorf("read %s: %w", p.real, nb.err)
			}
			if firstErr == nil {
				if _, err := w.Write(nb.entry); err != nil {
					firstErr = fmt.Errorf("write scratch file: %w", err)
				}
			}
			p.lines += nb.lines
			if nb.end > 0 {
				p.end = nb.end
			}
			s.TornTail = s.TornTail || nb.torn
			s.BlankLines += nb.blank
			s.Quarantined += nb.corrupt
			s.RecordsBefore += nb.records
			s.RemovedAge += nb.aged
			p.keptLen += nb.keptLen
			p.keptSize += nb.keptSize
			p.keptOldest = min(p.keptOldest, nb.oldest)
			*maxTS = max(*maxTS, nb.maxTS)
			if p.policy.Progress != nil {
				p.policy.Progress("scan", min(nb.start+blockSize, p.st.Size), p.st.Size)
			}
			free <- nb
		}
	}
	if firstErr != nil {
		return firstErr
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write scratch file: %w", err)
	}
	return nil
}
