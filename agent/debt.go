package agent

import (
	"errors"
	"fmt"
	"strings"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// Retention debt is what retention says should be gone but a run leaves
// in the store. Backends report what only they know (a consumer group
// holding entries, an approximate trim's leftovers, a run stopped at its
// deadline) in Stats.Debt; the agent adds what it decides itself: a run
// skipped below min_reclaim, refused by the safety valve or the clock
// guard, or failed after planning.

// belowMinReclaim returns the threshold and true when t's min_reclaim
// skips a compaction that would do s: one that frees less than the
// threshold (bytes, or a percentage of the store's size before). A plan
// that changes nothing is not skipped: applying it is already a no-op,
// and skipping it would report a skip where there is nothing to skip.
// Unset or 0 never skips (strict retention, the default).
func belowMinReclaim(t config.Target, s backends.Stats) (threshold int64, skip bool) {
	if t.MinReclaim == nil || t.MinReclaim.IsZero() {
		return 0, false
	}
	if s.Removed() == 0 && s.Quarantined == 0 && s.BlankLines == 0 {
		return 0, false
	}
	// A store whose size is unknown (Redis without MEMORY USAGE) cannot
	// be judged: skipping it would skip every run, and owe more forever.
	if s.BytesBefore <= 0 {
		return 0, false
	}
	threshold = t.MinReclaim.Of(s.BytesBefore)
	return threshold, s.Reclaimed() < threshold
}

// reclaim is what min_reclaim makes of one plan (decideReclaim).
type reclaim struct {
	threshold int64
	// skip: the whole compaction is skipped; the store stays as it is.
	skip bool
	// skipRewrites: the plan's cheap work (whole files unlinked) goes
	// ahead, its rewrites are skipped; cheap is what it then does and
	// debt what the skipped rewrites would have removed.
	skipRewrites bool
	cheap        backends.Stats
	debt         backends.Debt
}

// decideReclaim judges plan (whose stats are planned) against t's
// min_reclaim. A plan that can keep its cheap work apart
// (backends.RewriteSkipper: a rotating store's drops of wholly expired
// segments) has its rewrites judged alone: when they would free less than
// the threshold they are skipped and the drops go ahead, however little
// these free, since an unlink costs nothing worth saving. Any other plan
// (a JSON-lines file: its only work is a rewrite) is skipped whole or not
// at all, as is a plan whose drops would change nothing.
func decideReclaim(t config.Target, plan backends.Plan, planned backends.Stats) reclaim {
	if rs, ok := plan.(backends.RewriteSkipper); ok && t.MinReclaim != nil && !t.MinReclaim.IsZero() {
		if cheap, ok := rs.WithoutRewrites(); ok {
			rw := rewritePart(planned, cheap)
			threshold, skip := belowMinReclaim(t, rw)
			switch {
			case !skip:
				return reclaim{}
			case cheap.Removed() == 0 && cheap.Reclaimed() == 0 && cheap.Quarantined == 0 && cheap.BlankLines == 0:
				// Nothing but rewrites: skipped whole, as any plan.
			default:
				why := "its rewrites would free " + strings.TrimPrefix(minReclaimWhy(t, rw, threshold), "it would free ") +
					"; whole files retention empties are dropped"
				return reclaim{threshold: threshold, skipRewrites: true, cheap: cheap, debt: planDebt(backends.DebtBelowMinReclaim, why, rw)}
			}
		}
	}
	threshold, skip := belowMinReclaim(t, planned)
	if !skip {
		return reclaim{}
	}
	return reclaim{threshold: threshold, skip: true, debt: planDebt(backends.DebtBelowMinReclaim, minReclaimWhy(t, planned, threshold), planned)}
}

// rewritePart is what a plan's rewrites alone do, in a store of the
// plan's size: the plan less what it does without them.
func rewritePart(planned, cheap backends.Stats) backends.Stats {
	return backends.Stats{
		RecordsBefore: planned.RecordsBefore,
		RecordsAfter:  planned.RecordsBefore - (planned.Removed() - cheap.Removed()),
		RemovedAge:    planned.RemovedAge - cheap.RemovedAge,
		RemovedCount:  planned.RemovedCount - cheap.RemovedCount,
		RemovedBytes:  planned.RemovedBytes - cheap.RemovedBytes,
		Quarantined:   planned.Quarantined - cheap.Quarantined,
		BlankLines:    planned.BlankLines - cheap.BlankLines,
		BytesBefore:   planned.BytesBefore,
		BytesAfter:    planned.BytesBefore - max(planned.Reclaimed()-cheap.Reclaimed(), 0),
	}
}

// Judge returns a plan's stats as a real run (without --force) would
// judge them, changing nothing: a compaction skipped below min_reclaim or
// refused by the safety valve says so in a note, and owes what it would
// leave in its Debt; one whose rewrites are skipped below min_reclaim
// reports what it does without them. Dry runs report it; `explain` can
// too.
func Judge(t config.Target, plan backends.Plan) backends.Stats {
	planned := plan.Stats()
	rc := decideReclaim(t, plan, planned)
	if rc.skip {
		st := planned
		st.Notes = append(append([]string{}, planned.Notes...), "a run would skip the compaction below min_reclaim and change nothing")
		st.Debt = append(append([]backends.Debt{}, planned.Debt...), rc.debt)
		return st
	}
	st := planned
	st.Notes = append([]string{}, planned.Notes...)
	if rc.skipRewrites {
		st = rc.cheap
		st.Notes = append(st.Notes, "a run would skip the rewrites below min_reclaim and drop only whole files retention empties")
	}
	if err := checkValve(t, st); err != nil {
		st.Notes = append(st.Notes, fmt.Sprintf("a run without --force would be refused: %v", err))
		st.Debt = refusedDebt(st)
	}
	if rc.skipRewrites {
		st.Debt = append(append([]backends.Debt{}, st.Debt...), rc.debt)
	}
	return st
}

// minReclaimWhy says why a compaction was (or would be) skipped.
func minReclaimWhy(t config.Target, s backends.Stats, threshold int64) string {
	of := ""
	if t.MinReclaim.Percent != 0 {
		of = " (" + t.MinReclaim.String() + " of " + bytesize.IEC(s.BytesBefore) + ")"
	}
	return fmt.Sprintf("it would free %s, below min_reclaim %s%s", bytesize.IEC(s.Reclaimed()), bytesize.IEC(threshold), of)
}

// skipped is the result of a compaction skipped below min_reclaim:
// nothing changed, so the store is as planning found it, and what the
// plan would have removed is debt. The oldest record is not known (the
// plan only knows the oldest it would keep), so it is left out rather
// than reported too young.
func skipped(s backends.Stats, debt backends.Debt) backends.Stats {
	out := backends.Stats{
		RecordsBefore: s.RecordsBefore,
		RecordsAfter:  s.RecordsBefore,
		BytesBefore:   s.BytesBefore,
		BytesAfter:    s.BytesBefore,
		Future:        s.Future,
		NewestFuture:  s.NewestFuture,
		Ages:          s.Ages,
		Notes:         append([]string{}, s.Notes...),
	}
	if seg := s.Segments; seg != nil {
		out.Segments = &backends.SegmentStats{Untouched: seg.Dropped + seg.Rewritten + seg.Untouched, BytesRead: seg.BytesRead}
	}
	if st := s.Stream; st != nil {
		out.Stream = &backends.StreamStats{HeldBack: st.HeldBack}
	}
	out.Notes = append(out.Notes, "compaction skipped below min_reclaim, store unchanged")
	out.Debt = append(append([]backends.Debt{}, s.Debt...), debt)
	return out
}

// planDebt is what a plan would have removed, owed for reason.
func planDebt(reason backends.DebtReason, detail string, s backends.Stats) backends.Debt {
	return backends.Debt{
		Reason:    reason,
		Detail:    detail,
		Records:   s.Removed(),
		Bytes:     s.Reclaimed(),
		Estimated: s.Stream != nil && s.Stream.Estimated,
	}
}

// refusedDebt is the debt of a run the safety valve refused: the
// plan's own (what groups hold) and everything it would have removed.
func refusedDebt(s backends.Stats) []backends.Debt {
	if s.Removed() == 0 {
		return s.Debt
	}
	return append(append([]backends.Debt{}, s.Debt...), planDebt(backends.DebtSafetyValve, "", s))
}

// clockDebt is the debt of a run the clock guard refused. It stopped
// planning, so how much age retention would remove is unknown: -1, never
// a 0 that reads as "no debt".
func clockDebt(err error) ([]backends.Debt, bool) {
	var ce *backends.ClockError
	if !errors.As(err, &ce) {
		return nil, false
	}
	return []backends.Debt{{Reason: backends.DebtClockGuard, Detail: "the store's timestamps are not Unix time", Records: -1, Bytes: -1}}, true
}

// incompleteDebt is the debt of a run that failed or was interrupted
// after planning. A backend whose Apply stops part way accounts for it in
// Stats.Debt (Redis: DebtIncomplete for what the streams it did not
// finish still owe, an entry of 0 records when nothing is); when it
// reports nothing, its Apply changed nothing (a file backend's failed
// swap leaves the store as it was), so the whole plan is still owed,
// with the plan's own debt (what groups hold).
func incompleteDebt(planned, got backends.Stats) []backends.Debt {
	if len(got.Debt) > 0 {
		return got.Debt
	}
	debt := append([]backends.Debt{}, planned.Debt...)
	if planned.Removed() > 0 {
		debt = append(debt, planDebt(backends.DebtIncomplete, "", planned))
	}
	return debt
}

// debtWords are the plain words for each reason, after the amount.
var debtWords = map[backends.DebtReason]string{
	backends.DebtHeldByGroup:     "held by a consumer group that has not acknowledged them",
	backends.DebtApproximate:     "left by the approximate trim, which removes whole stream nodes only (approximate: false trims exactly)",
	backends.DebtBelowMinReclaim: "left because the compaction was skipped below min_reclaim",
	backends.DebtSafetyValve:     "left because the safety valve (max_remove_fraction) refused the run; rerun with --force to confirm",
	backends.DebtClockGuard:      "left because the clock guard refused age retention",
	backends.DebtRunTimeout:      "left because the run stopped at run_timeout; the next run continues",
	backends.DebtIncomplete:      "left because the run failed or was interrupted after planning",
	backends.DebtBacklog:         "left for the next run: more unreadable entries to quarantine, or records to delete one by one, than one run handles",
}

// DescribeDebt says one part of the debt in plain words:
//
//	policy cannot be met: group billing of papyra:local:events holds 1,204 entries since 2026-11-30T08:00:00Z
//	18,211 records (4.2 MiB) left because the compaction was skipped below min_reclaim: it would free 4.2 MiB, below min_reclaim 1 GiB
func DescribeDebt(d backends.Debt) string {
	amount := "an unknown number of records"
	if d.Records >= 0 {
		about := ""
		if d.Estimated {
			about = "about "
		}
		amount = about + bytesize.Count(d.Records) + " records"
		if d.Reason == backends.DebtHeldByGroup || d.Reason == backends.DebtApproximate {
			amount = about + bytesize.Count(d.Records) + " entries"
		}
	}
	if d.Bytes > 0 {
		amount += " (" + bytesize.IEC(d.Bytes) + ")"
	}
	since := ""
	if d.HasOldest {
		since = " since " + FormatTimestamp(d.Oldest)
	}
	if d.Reason == backends.DebtHeldByGroup {
		who := d.Detail
		if who == "" {
			who = "a consumer group"
		}
		return fmt.Sprintf("policy cannot be met: %s holds %s%s", who, amount, since)
	}
	words, ok := debtWords[d.Reason]
	if !ok {
		words = "left (" + string(d.Reason) + ")"
	}
	var b strings.Builder
	b.WriteString(amount + " " + words)
	if d.Detail != "" {
		b.WriteString(": " + d.Detail)
	}
	b.WriteString(since)
	return b.String()
}
