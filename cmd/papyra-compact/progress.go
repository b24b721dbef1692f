package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// progressBar draws one line on a terminal: target, phase, bytes done of
// total, rate and ETA. It appears only once work has taken a second, so
// short runs print nothing but their summary, and redraws at most ten
// times a second.
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer
	start   time.Time
	phaseAt time.Time
	phase   string
	last    time.Time
	drawn   bool
}

func newProgressBar(w io.Writer) *progressBar {
	now := time.Now()
	return &progressBar{w: w, start: now, phaseAt: now}
}

func (p *progressBar) update(target string, s backends.Step) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	phase, done, total := s.Phase, s.Done, s.Total
	key := target + "/" + phase
	if key != p.phase {
		p.phase, p.phaseAt = key, now
	}
	if now.Sub(p.start) < time.Second || now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("#", n) + strings.Repeat("-", width-n)
	elapsed := now.Sub(p.phaseAt).Seconds()
	rate, eta := 0.0, "?"
	if elapsed > 0 && done > 0 {
		rate = float64(done) / elapsed
		eta = time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	size := bytesize.IEC
	if s.Unit == backends.Entries {
		size = func(n int64) string { return fmt.Sprintf("%d", n) }
	}
	fmt.Fprintf(p.w, "\r\033[K%s %s [%s] %3.0f%% %s/%s %s/s ETA %s",
		target, phase, bar, frac*100, size(done), size(total), size(int64(rate)), eta)
	p.drawn = true
}

func (p *progressBar) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
