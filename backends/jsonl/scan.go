package jsonl

import (
	"bufio"
	"context"
	"fmt"
	"math"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/internal/classify"
	"github.com/papyra-compact/papyra-compact/backends/internal/pyjson"
)

// scan is the first pass: classify every complete line of [0, size) on
// every core and write the scratch entries in file order.
func (p *plan) scan(ctx context.Context) error {
	size := p.st.Size
	s := &p.stats
	s.BytesBefore = size
	p.keptOldest = math.Inf(1)
	cp := classify.Policy{MaxLine: maxLine, MaxDepth: pyjson.DefaultMaxDepth}
	_, cp.WantSize = p.policy.ByteLimit()
	cp.Cutoff, cp.HasAge = p.policy.AgeCutoff()
	if !p.policy.Now.IsZero() {
		// Dating every record costs a comparison or two: always done.
		cp.Dates = &p.policy
		s.Ages = &backends.Ages{}
	}
	p.newestFuture = math.Inf(-1)
	w := bufio.NewWriterSize(p.scratch.Writer(), 256<<10)
	maxTS := math.Inf(-1)
	err := classify.File(ctx, p.f, size, cp, func(b *classify.Block) error {
		if _, err := w.Write(b.Entries); err != nil {
			return fmt.Errorf("write scratch file: %w", err)
		}
		p.lines += b.Lines
		if b.End > 0 {
			p.end = b.End
		}
		s.TornTail = s.TornTail || b.Torn // carried over verbatim by Apply
		s.BlankLines += b.Blank
		s.Quarantined += b.Corrupt
		p.corruptLen += b.CorruptLen
		s.RecordsBefore += b.Records
		s.RemovedAge += b.Aged
		p.unsure += b.Unsure
		p.keptLen += b.KeptLen
		p.keptSize += b.KeptSize
		p.keptOldest = min(p.keptOldest, b.Oldest)
		maxTS = max(maxTS, b.MaxTS)
		if s.Ages != nil {
			s.Ages.Merge(b.Ages)
			p.future += b.Future
			p.newestFuture = max(p.newestFuture, b.NewestFuture)
		}
		if p.policy.Progress != nil {
			p.policy.Progress(backends.Step{Phase: "scan", Done: min(b.Start+classify.BlockSize, size), Total: size})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("scan %s: %w", p.real, err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write scratch file: %w", err)
	}
	if p.unsure > 0 {
		s.Notes = append(s.Notes, classify.UnsureNote(p.unsure))
	}
	return p.policy.CheckClock(p.real, maxTS, backends.FixDropAge)
}
