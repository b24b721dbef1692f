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
// it over the machine's cores: this goroutine cuts the store into batches
// of whole lines, workers classify batches, and a collector writes their
// scratch entries in file order. A fixed set of batches circulates, so
// memory stays at about batchCount × batchBytes whatever the store's size.
const (
	batchBytes = 1 << 20
	batchLines = 16 << 10
	maxWorkers = 4
)

// batch is a run of consecutive complete lines and, once classified, their
// scratch entries and counts.
type batch struct {
	seq                           int
	body                          []byte  // the lines' bodies, without their newlines, back to back
	ends                          []int   // end of each line's body in body; -1 for a too-long line
	lens                          []int64 // each line's length in the store, newline included
	entry                         []byte  // the scratch entries, filled by a worker
	blank, corrupt, records, aged int64
	maxTS                         float64
}

func (b *batch) reset(seq int) {
	b.seq = seq
	b.body, b.ends, b.lens, b.entry = b.body[:0], b.ends[:0], b.lens[:0], b.entry[:0]
	b.blank, b.corrupt, b.records, b.aged = 0, 0, 0, 0
	b.maxTS = math.Inf(-1)
}

func (b *batch) full() bool { return len(b.body) >= batchBytes || len(b.ends) >= batchLines }

// classifier turns lines into scratch entries under one policy.
type classifier struct {
	cls      *pyjson.Classifier
	wantSize bool
	hasAge   bool
	cutoff   float64
}

func (c *classifier) classify(b *batch) {
	start := 0
	for i, end := range b.ends {
		var line pyjson.Line
		if end < 0 {
			line = pyjson.Line{Class: pyjson.Corrupt, Reason: pyjson.ReasonTooLong}
		} else {
			line = c.cls.Classify(b.body[start:end], c.wantSize)
			start = end
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
			}
		}
		b.entry = scratch.Append(b.entry, code, line, b.lens[i])
	}
}

// scan is the first pass: classify every complete line of [0, size) and
// write its scratch entry.
func (p *plan) scan(ctx context.Context) error {
	size := p.st.Size
	pol := p.policy.Retention
	p.stats.BytesBefore = size
	workers := min(runtime.GOMAXPROCS(0), maxWorkers)
	free := make(chan *batch, 2*workers+2)
	for i := 0; i < cap(free); i++ {
		free <- &batch{}
	}
	work := make(chan *batch, cap(free))
	done := make(chan *batch, cap(free))
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		c := &classifier{cls: pyjson.NewClassifier(maxDepth), wantSize: pol.MaxTotalBytes != nil}
		if pol.MaxAgeSeconds != nil {
			c.hasAge = true
			c.cutoff = float64(p.policy.Now.UnixNano())/1e9 - *pol.MaxAgeSeconds
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				c.classify(b)
				done <- b
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	collected := make(chan error, 1)
	maxTS := math.Inf(-1)
	go func() { collected <- p.collect(done, free, &maxTS) }()

	readErr := p.readBatches(ctx, free, work)
	close(work)
	if err := errors.Join(readErr, <-collected); err != nil {
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

// readBatches reads the store into batches of whole lines and hands them to the
// workers. It stops at a last line without a newline (a torn or in-flight
// write, carried over verbatim by Apply).
func (p *plan) readBatches(ctx context.Context, free <-chan *batch, work chan<- *batch) error {
	size := p.st.Size
	r := lines.NewReader(io.NewSectionReader(p.f, 0, size), 0, bufSize, maxLine)
	b := <-free
	b.reset(0)
	var nextCk int64
	for {
		l, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			work <- b
			return fmt.Errorf("read %s: %w", p.real, err)
		}
		if !l.Complete {
			p.stats.TornTail = true
			break
		}
		p.lines++
		p.end = l.Off + l.Len
		if l.TooLong {
			b.ends = append(b.ends, -1)
		} else {
			b.body = append(b.body, l.Body()...)
			b.ends = append(b.ends, len(b.body))
		}
		b.lens = append(b.lens, l.Len)
		if b.full() {
			seq := b.seq
			work <- b
			b = <-free
			b.reset(seq + 1)
		}
		if p.end >= nextCk {
			nextCk = p.end + 8<<20
			if err := p.b.checkCtx(ctx); err != nil {
				work <- b
				return err
			}
			if p.policy.Progress != nil {
				p.policy.Progress("scan", p.end, size)
			}
		}
	}
	work <- b
	return nil
}

// collect writes the classified batches' entries to the scratch file in
// file order and adds up their counts. It drains done even after an
// error, so that no worker blocks.
func (p *plan) collect(done <-chan *batch, free chan<- *batch, maxTS *float64) error {
	w := bufio.NewWriterSize(p.scratch, 256<<10)
	pending := map[int]*batch{}
	next := 0
	var werr error
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
			if werr == nil {
				if _, err := w.Write(nb.entry); err != nil {
					werr = fmt.Errorf("write scratch file: %w", err)
				}
			}
			s.BlankLines += nb.blank
			s.Quarantined += nb.corrupt
			s.RecordsBefore += nb.records
			s.RemovedAge += nb.aged
			*maxTS = max(*maxTS, nb.maxTS)
			free <- nb
		}
	}
	if werr != nil {
		return werr
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write scratch file: %w", err)
	}
	return nil
}
