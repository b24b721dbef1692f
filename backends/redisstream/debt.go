package redisstream

import (
	"context"

	"github.com/papyra-compact/papyra-compact/backends"
)

// approxCount is the most entries one count of an approximate trim's
// leftovers reads (fewer when entries are large). An approximate trim
// leaves at most part of one stream node (stream-node-max-entries, 100 by
// default); more than this is reported as an estimate rather than read.
const approxCount int64 = 1000

// Retention debt of a stream (backends.Stats.Debt): what retention says
// should be gone but the run leaves, by reason. The plan owes what
// consumer groups hold; a run owes, besides, what an approximate trim
// left and what it did not get to (run_timeout, a failure).

// heldDebt turns what each group holds back into debt, with the oldest
// entry it holds: the first readable entry at or after its floor. groups
// are the floors the held-back counts were made with; a group not among
// them (gone meanwhile) is reported without an oldest.
func (b *Backend) heldDebt(ctx context.Context, key string, held []backends.HeldBack, groups []groupFloor) []backends.Debt {
	var out []backends.Debt
	for _, h := range held {
		if h.Stream != key || h.Entries <= 0 {
			continue
		}
		d := backends.Debt{Reason: backends.DebtHeldByGroup, Detail: "group " + h.Group + " of " + h.Stream,
			Records: h.Entries, Bytes: -1, Estimated: h.Estimated}
		for _, g := range groups {
			if g.name != h.Group {
				continue
			}
			// Best effort: the oldest is a detail, not worth failing a
			// run that did its work.
			probe := &streamPlan{key: key}
			if err := b.oldestFrom(ctx, probe, g.floor); err == nil && probe.stats.HasOldest {
				d.Oldest, d.HasOldest = probe.stats.OldestKept, true
			}
		}
		out = append(out, d)
	}
	return out
}

// approximateLeft counts what an approximate trim left of what it should
// have removed: the entries below the boundary (with max_records trimmed
// as a MAXLEN would, below the plan's last cut) that no group holds (below every group's
// floor; those at or above one are held_by_group). estimated is true
// when there were more than approxCount to read.
func (b *Backend) approximateLeft(ctx context.Context, sp *streamPlan, groups []groupFloor) (n int64, estimated bool, err error) {
	if !b.cfg.approximate {
		return 0, false, nil
	}
	threshold := sp.boundary
	if sp.maxlen > 0 && threshold.less(sp.readBelow) {
		// max_records was trimmed up to the plan's last cut (Apply):
		// what is left below it is what the approximate trim left.
		threshold = sp.readBelow
	}
	if threshold.isZero() {
		return 0, false, nil
	}
	for _, g := range groups {
		if g.floor.less(threshold) {
			threshold = g.floor
		}
	}
	// Read in paced steps sized by bytes, as every read is; a partial
	// node is normally one step. More than approxCount: at least that
	// many, said to be an estimate.
	r := b.newReader(sp.key, "-", "("+threshold.String(), false, approxCount)
	for n <= approxCount {
		msgs, err := r.next(ctx, 0)
		if err != nil {
			return n, false, err
		}
		if len(msgs) == 0 {
			return n, false, nil
		}
		n += int64(len(msgs))
	}
	return n, true, nil
}

// streamDebt is what one stream owes after a run that finished it: what
// its groups hold now and what an approximate trim left. It reads the
// groups' floors again (they may have moved during the run).
func (b *Backend) streamDebt(ctx context.Context, sp *streamPlan, st *backends.Stats) {
	ctx = context.WithoutCancel(ctx)
	var groups []groupFloor
	var held []backends.HeldBack
	if st.Stream != nil {
		held = st.Stream.HeldBack
	}
	if len(held) > 0 || (b.cfg.approximate && !sp.boundary.isZero()) {
		g, err := b.floors(ctx, sp.key)
		if err != nil {
			// The groups cannot be read: what the plan knew stands.
			g = sp.groups
		}
		groups = g
	}
	n, est, err := b.approximateLeft(ctx, sp, groups)
	if err == nil && n > 0 && sp.maxlen > 0 && st.Stream != nil {
		// What the groups of the lowest floor hold past max_records was
		// counted as all that is left past it (heldPastMaxlen), the
		// entries below their floor that the approximate trim left
		// included: they are approximate_trim debt, not the groups'.
		held = withoutLeftBelow(held, groups, n)
		st.Stream.HeldBack = held
	}
	st.Debt = append(st.Debt, b.heldDebt(ctx, sp.key, held, groups)...)
	if sp.backlog.Reason != "" {
		st.Debt = append(st.Debt, sp.backlog)
	}
	switch {
	case err != nil:
		st.Notes = append(st.Notes, "could not count what the approximate trim left of "+sp.key+": "+err.Error())
	case n > 0:
		st.Debt = append(st.Debt, backends.Debt{Reason: backends.DebtApproximate, Detail: sp.key, Records: n, Bytes: -1, Estimated: est})
	}
}

// withoutLeftBelow takes n entries an approximate trim left below every
// group's floor out of what each group of the lowest floor holds, in a
// copy of held.
func withoutLeftBelow(held []backends.HeldBack, groups []groupFloor, n int64) []backends.HeldBack {
	lowest, ok := lowestFloor(groups)
	if !ok {
		return held
	}
	atLowest := map[string]bool{}
	for _, g := range groups {
		if g.floor == lowest {
			atLowest[g.name] = true
		}
	}
	out := make([]backends.HeldBack, 0, len(held))
	for _, h := range held {
		if atLowest[h.Group] {
			h.Entries -= min(n, h.Entries)
		}
		if h.Entries > 0 {
			out = append(out, h)
		}
	}
	return out
}

// owe adds to st, a stream's stats after a run that did not finish it,
// what its plan removes that the run did not, for reason (run_timeout,
// incomplete), and what the plan knew its groups hold.
func owe(st *backends.Stats, sp *streamPlan, reason backends.DebtReason) {
	if !hasReason(st.Debt, backends.DebtHeldByGroup) {
		st.Debt = append(st.Debt, sp.stats.Debt...) // the backlog's too
	} else if sp.backlog.Reason != "" {
		st.Debt = append(st.Debt, sp.backlog)
	}
	if left := sp.stats.Removed() - st.Removed(); left > 0 {
		st.Debt = append(st.Debt, backends.Debt{Reason: reason, Detail: sp.key, Records: left, Bytes: -1,
			Estimated: sp.stats.Stream != nil && sp.stats.Stream.Estimated})
	}
}

func hasReason(debt []backends.Debt, r backends.DebtReason) bool {
	for _, d := range debt {
		if d.Reason == r {
			return true
		}
	}
	return false
}
