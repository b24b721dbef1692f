package agent

import (
	"fmt"
	"strings"
	"time"
)

// Summary is the one line that ends every target's run, for people:
//
//	orders: success: records 2000 -> 980 (removed 1020: age 1020, count 0, bytes 0), quarantined 20, blank 0, bytes 416379 -> 203827 (reclaimed 212552), oldest kept 2026-11-17T00:00:00Z, 41ms
func Summary(r Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", r.Target)
	s := r.Stats
	switch r.Outcome {
	case OutcomeFailed:
		fmt.Fprintf(&b, "FAILED after %s: %v", round(r.Duration), r.Err)
		return b.String()
	case OutcomeRefused:
		fmt.Fprintf(&b, "REFUSED, nothing changed: %v", r.Err)
		return b.String()
	case OutcomeLocked:
		fmt.Fprintf(&b, "skipped: %v", r.Err)
		return b.String()
	case OutcomeInterrupted:
		fmt.Fprintf(&b, "interrupted after %s: %v", round(r.Duration), r.Err)
		return b.String()
	case OutcomeNothingToDo:
		b.WriteString("nothing to do (store does not exist yet)")
		return b.String()
	case OutcomeDryRun:
		b.WriteString("dry run, would leave: ")
	default:
		b.WriteString("success: ")
	}
	fmt.Fprintf(&b, "records %d -> %d (removed %d: age %d, count %d, bytes %d), quarantined %d, blank %d, bytes %d -> %d (reclaimed %d)",
		s.RecordsBefore, s.RecordsAfter, s.Removed(), s.RemovedAge, s.RemovedCount, s.RemovedBytes,
		s.Quarantined, s.BlankLines, s.BytesBefore, s.BytesAfter, s.Reclaimed())
	if s.HasOldest {
		fmt.Fprintf(&b, ", oldest kept %s", FormatTimestamp(s.OldestKept))
	}
	if s.Appended > 0 {
		fmt.Fprintf(&b, ", %d bytes appended meanwhile carried over", s.Appended)
	}
	if s.TornTail {
		b.WriteString(", torn last line carried over")
	}
	if seg := s.Segments; seg != nil {
		fmt.Fprintf(&b, ", segments dropped %d, rewritten %d, untouched %d (read %d bytes)", seg.Dropped, seg.Rewritten, seg.Untouched, seg.BytesRead)
	}
	if s.Stream != nil && s.Stream.Estimated {
		b.WriteString(", removal counts estimated")
	}
	if s.QuarantineFile != "" {
		fmt.Fprintf(&b, ", quarantine %s", s.QuarantineFile)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, ", %s", n)
	}
	for _, d := range s.Debt {
		fmt.Fprintf(&b, ", retention debt: %s", DescribeDebt(d))
	}
	fmt.Fprintf(&b, ", %s", round(r.Duration))
	return b.String()
}

// FormatTimestamp prints a Papyra timestamp (float Unix seconds) in UTC.
func FormatTimestamp(ts float64) string {
	if ts < 0 || ts > 1e11 || ts != ts {
		return fmt.Sprint(ts)
	}
	sec := int64(ts)
	return time.Unix(sec, int64((ts-float64(sec))*1e9)).UTC().Format(time.RFC3339)
}

func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	case d > time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
