package agent

import (
	"fmt"
	"strconv"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// checkValve is the safety valve: it returns an error wrapping ErrRefused
// when the plan removes more than t's max_remove_fraction of the store's
// records, nil otherwise (or when t sets none). Removed counts retention's
// removals only (age, count and size): quarantined corrupt lines are not
// records Papyra reads, so moving them aside is not a removal. It reads
// the plan's Stats, so it judges every backend alike; where a backend's
// counts are estimates (Redis, Stats.Stream.Estimated) it judges the
// estimate and says so.
func checkValve(t config.Target, s backends.Stats) error {
	if t.MaxRemoveFraction == nil || s.RecordsBefore <= 0 {
		return nil
	}
	removed, total := s.Removed(), s.RecordsBefore
	// Compare ratios, not removed against fraction*total: the division
	// is correctly rounded, so a store at exactly the fraction (57 of
	// 100 at 0.57) compares equal and runs, where 0.57*100 would round
	// below 57 and refuse it.
	ratio := float64(removed) / float64(total)
	if ratio <= float64(*t.MaxRemoveFraction) {
		return nil
	}
	about, estimated := "", ""
	if s.Stream != nil && s.Stream.Estimated {
		about, estimated = "about ", ", estimated"
	}
	return fmt.Errorf("%w (%s): would remove %s%s of %s (%s of %s records%s) — clock jump? config typo? rerun with --force to confirm",
		ErrRefused, *t.MaxRemoveFraction, about, percent(removed, total), t.Name, bytesize.Count(removed), bytesize.Count(total), estimated)
}

// percent formats removed/total as a percentage with at most one
// decimal, rounded up so that it never shows the limit it exceeded: 5,001
// of 10,000 is "50.1%", not "50%". Integer arithmetic keeps 9,700 of
// 10,000 at exactly "97%".
func percent(removed, total int64) string {
	tenths := (removed*1000 + total - 1) / total
	if tenths%10 == 0 {
		return strconv.FormatInt(tenths/10, 10) + "%"
	}
	return fmt.Sprintf("%d.%d%%", tenths/10, tenths%10)
}
