package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// Where an Explanation's figures come from (Explanation.Source).
const (
	// SourceStore: the store was read now (a plan, nothing changed).
	SourceStore = "store"
	// SourceLastRun: the store could not be read by this user or at
	// all; the figures are the last successful run's, from the state
	// directory, as of Explanation.AsOf.
	SourceLastRun = "last_run"
	// SourceNone: neither the store nor a recorded run.
	SourceNone = "none"
)

// Why records retention would remove stay in the store, besides the
// backends' debt reasons (ExplainHeld.Reason).
const (
	// HeldClockGuard and HeldSafetyValve are backends.DebtClockGuard
	// and backends.DebtSafetyValve: a run would be refused.
	HeldClockGuard  = string(backends.DebtClockGuard)
	HeldSafetyValve = string(backends.DebtSafetyValve)
)

// Explanation is what `papyra-compact explain` says about one store. Its
// JSON field names are stable: scripts read them (`explain --json`).
type Explanation struct {
	Target  string `json:"target"`
	Backend string `json:"backend"`
	// Store names the store: its path, or the Redis URL's host.
	Store string    `json:"store"`
	Now   time.Time `json:"now"`
	// Source is SourceStore, SourceLastRun or SourceNone; AsOf is when
	// the last run started, for SourceLastRun.
	Source string     `json:"source"`
	AsOf   *time.Time `json:"as_of"`
	// Unreadable is why the store could not be read now; "" when it was.
	Unreadable string `json:"unreadable,omitempty"`
	// Missing is true when the store does not exist.
	Missing bool          `json:"missing"`
	Policy  ExplainPolicy `json:"policy"`

	// Records and Bytes are what the store holds (records Papyra reads;
	// bytes as stored, for Redis MEMORY USAGE's estimate).
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// Ages splits Records by age; null when the backend could not date
	// them (or, from the last run, when it recorded none).
	Ages []AgeRow `json:"ages"`
	// Remove is what retention would remove now; Keep what stays.
	Remove ExplainRemove `json:"would_remove"`
	Keep   ExplainKeep   `json:"would_keep"`
	// Held lists why records retention would remove stay (consumer
	// groups, an approximate trim, min_reclaim, a refusal…), one entry
	// per reason and holder.
	Held []ExplainHeld `json:"held"`
	// Future are the future-dated records kept.
	Future ExplainFuture `json:"future"`
	// Corrupt lines (entries) a run moves to quarantine, and blank
	// lines it drops.
	Corrupt int64 `json:"corrupt"`
	Blank   int64 `json:"blank_lines"`
	// Active is a rotating store's active segment; null for other stores.
	Active *ExplainActive `json:"active_segment"`
	// Sandbox lists directories the store needs written that the
	// service units' sandboxes do not allow (filled by the command line,
	// which reads the units).
	Sandbox []string `json:"sandbox_missing"`
	// Lock says how the store's lock was while explaining: "taken",
	// "held by …" (a run is in progress), or why this user cannot take it.
	Lock  string   `json:"lock"`
	Notes []string `json:"notes"`
}

// ExplainPolicy is the target's retention, as configured. Null: unset.
type ExplainPolicy struct {
	MaxAgeSeconds     *float64 `json:"max_age_seconds"`
	MaxRecords        *int64   `json:"max_records"`
	MaxTotalBytes     *int64   `json:"max_total_bytes"`
	MaxClockSkew      float64  `json:"max_clock_skew_seconds"`
	MaxRemoveFraction *float64 `json:"max_remove_fraction"`
}

// AgeRow is one age bucket: records younger than Age (and not younger
// than the previous row's Age): "1h", "1d", "7d", "30d", "90d", then
// "older", "future" (stamped more than max_clock_skew ahead) and
// "undated" (no usable timestamp; age retention removes them).
type AgeRow struct {
	Age     string `json:"age"`
	Records int64  `json:"records"`
	Bytes   int64  `json:"bytes"`
}

// ageLabels name backends.Ages' buckets, youngest first, then the older,
// the future-dated and the undated records.
var ageLabels = [...]string{"1h", "1d", "7d", "30d", "90d", "older", "future", "undated"}

// AgeRows turns a's buckets into rows; nil for nil.
func AgeRows(a *backends.Ages) []AgeRow {
	if a == nil {
		return nil
	}
	rows := make([]AgeRow, 0, len(ageLabels))
	for i, b := range a.Buckets {
		rows = append(rows, AgeRow{Age: ageLabels[i], Records: b.Records, Bytes: b.Bytes})
	}
	rows = append(rows,
		AgeRow{Age: "future", Records: a.Future.Records, Bytes: a.Future.Bytes},
		AgeRow{Age: "undated", Records: a.Undated.Records, Bytes: a.Undated.Bytes})
	return rows
}

// ExplainRemove is what retention would remove now.
type ExplainRemove struct {
	Records int64 `json:"records"`
	ByAge   int64 `json:"age"`
	ByCount int64 `json:"count"`
	ByBytes int64 `json:"bytes"`
	// Freed is the bytes the store would shrink by.
	Freed int64 `json:"freed_bytes"`
	// Estimated is true when the counts are estimates (Redis).
	Estimated bool `json:"estimated"`
}

// ExplainKeep is what stays.
type ExplainKeep struct {
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// Oldest is the oldest kept record's timestamp; null when none.
	Oldest *Stamp `json:"oldest"`
}

// ExplainHeld is one reason records retention would remove stay.
type ExplainHeld struct {
	// Reason is a backends.DebtReason ("held_by_group",
	// "approximate_trim", "below_min_reclaim", "safety_valve",
	// "clock_guard", "run_timeout", "incomplete").
	Reason string `json:"reason"`
	// Detail names the holder ("group billing of papyra:x:events") or
	// gives the refusal's message.
	Detail string `json:"detail"`
	// Records and Bytes (-1: unknown) are how much it holds.
	Records   int64  `json:"records"`
	Bytes     int64  `json:"bytes"`
	Oldest    *Stamp `json:"oldest"`
	Estimated bool   `json:"estimated"`
}

// ExplainFuture are the future-dated records a run keeps.
type ExplainFuture struct {
	Records int64  `json:"records"`
	Newest  *Stamp `json:"newest"`
	// Ahead is how far Newest is after Now, in words ("3h0m0s").
	Ahead string `json:"ahead,omitempty"`
}

// ExplainActive is a rotating store's active segment: the file Papyra
// appends to, never dropped.
type ExplainActive struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}

// Explain describes one target's store without changing it: it plans a
// compaction (Backend.Plan changes nothing) and reports what the store
// holds by age, what retention would remove now and why the rest stays.
// It runs as any user: it never recovers an interrupted run, takes the
// store's lock only when it can (so that a run cannot change the store
// under it), and plans with scratch files in the temporary directory
// when the state directory is not writable. A store this user cannot
// read (a 0600 file, a Redis password_file only root reads) is explained
// from the last run's figures in the state directory. The error is for
// an unknown target only.
func Explain(ctx context.Context, cfg *config.Config, reg *backends.Registry, target string, now time.Time) (*Explanation, error) {
	a := New(cfg, reg, slog.New(slog.DiscardHandler))
	ts, err := a.Select([]string{target})
	if err != nil {
		return nil, err
	}
	t := ts[0]
	if now.IsZero() {
		now = time.Now()
	}
	e := &Explanation{Target: t.Name, Backend: t.Kind, Store: storeName(t), Now: now.UTC(),
		Source: SourceStore, Held: []ExplainHeld{}, Sandbox: []string{}, Notes: []string{}}
	e.Policy = explainPolicy(cfg, t)
	st, err := e.plan(ctx, cfg, reg, t, now)
	switch {
	case errors.Is(err, backends.ErrNothingToDo):
		e.Missing = true
		e.Ages = AgeRows(&backends.Ages{})
	case err != nil:
		e.Unreadable = err.Error()
		e.fromState(cfg.StateDir, t.Name)
	default:
		e.fromStats(t, st)
	}
	return e, nil
}

// ExplainLastRun explains target from the state directory alone, when
// the configuration cannot be read (why says so): the last run's figures,
// or none.
func ExplainLastRun(stateDir, target string, now time.Time, why string) *Explanation {
	e := &Explanation{Target: target, Now: now.UTC(), Unreadable: why, Held: []ExplainHeld{}, Sandbox: []string{}, Notes: []string{}}
	e.fromState(stateDir, target)
	return e
}

// storeName is what the configuration names the store by, without a
// password a Redis URL may carry.
func storeName(t config.Target) string {
	switch {
	case t.Path != "":
		return t.Path
	case t.URL != "":
		if u, err := url.Parse(t.URL); err == nil {
			return u.Redacted()
		}
		return "redis (url unparsable)"
	}
	return strings.Join(t.Addrs, ",")
}

func explainPolicy(cfg *config.Config, t config.Target) ExplainPolicy {
	r := cfg.Policy(t)
	p := ExplainPolicy{MaxAgeSeconds: r.MaxAgeSeconds, MaxRecords: r.MaxRecords, MaxTotalBytes: r.MaxTotalBytes,
		MaxClockSkew: cfg.ClockSkew(t).Seconds()}
	if f := t.MaxRemoveFraction; f != nil {
		v := float64(*f)
		p.MaxRemoveFraction = &v
	}
	return p
}

// plan plans t as a run would, read-only, and returns the plan's stats
// with the refusals a run would meet added to Stats.Debt.
func (e *Explanation) plan(ctx context.Context, cfg *config.Config, reg *backends.Registry, t config.Target, now time.Time) (backends.Stats, error) {
	key, err := reg.LockKey(t)
	if err != nil {
		return backends.Stats{}, err
	}
	env := envFor(cfg, t, slog.New(slog.DiscardHandler))
	env.LockKey = key
	if !writable(env.ScratchDir) {
		// An unprivileged user: the scratch files are unlinked on
		// creation, so any directory it can write will do.
		env.ScratchDir = os.TempDir()
	}
	b, err := reg.New(t, env)
	if err != nil {
		return backends.Stats{}, err
	}
	defer b.Close()
	e.Lock = "none (the store kind needs none)"
	if key != "" {
		// Hold the lock when possible so that a run cannot change the
		// store while it is read; without it (a run holds it, or this
		// user cannot create the lock file) the plan is still a
		// consistent read, of a store that may change just after.
		lock, err := TryLock(cfg.LockDir, key, t.Name+" (explain)")
		switch {
		case err == nil:
			defer lock.Unlock()
			e.Lock = "taken"
		case errors.Is(err, backends.ErrLocked):
			e.Lock = "held by another process: " + ReadHolder(LockPath(cfg.LockDir, key))
			e.Notes = append(e.Notes, "a run holds the store's lock: it may be changing the store right now")
		default:
			e.Lock = "not taken (a run may change the store while it is read): " + err.Error()
		}
	}
	pol := backends.Policy{Retention: cfg.Policy(t), Now: now, MaxClockSkew: cfg.ClockSkew(t), Explain: true}
	plan, err := b.Plan(ctx, pol)
	var guard *backends.ClockError
	if errors.As(err, &guard) {
		// The clock guard (Policy.CheckClock) refuses age retention on
		// a store stamped with a monotonic clock: plan the rest of the
		// policy to still show what the store holds.
		pol.Retention.MaxAgeSeconds = nil
		plan, err = b.Plan(ctx, pol)
		if err != nil {
			return backends.Stats{}, errors.Join(guard, err)
		}
	}
	if err != nil {
		return backends.Stats{}, err
	}
	defer plan.Close()
	// What a run would do with this plan, as RunTarget decides it: skip
	// it below min_reclaim, or refuse it by the safety valve.
	st := plan.Stats()
	if guard != nil {
		st.Debt = append(st.Debt, backends.Debt{Reason: backends.DebtClockGuard, Detail: guard.Error(), Records: -1, Bytes: -1})
	}
	// A run whose rewrites are skipped still drops whole files: the
	// valve judges those.
	rc := decideReclaim(t, plan, st)
	judged := st
	if rc.skipRewrites {
		judged = rc.cheap
		e.Notes = append(e.Notes, fmt.Sprintf("a run drops the whole files retention empties (%s) and skips the rewrites below min_reclaim", bytesize.IEC(rc.cheap.Reclaimed())))
	}
	if rc.skip || rc.skipRewrites {
		st.Debt = append(st.Debt, rc.debt)
	}
	if err := checkValve(t, judged); err != nil && !rc.skip {
		st.Debt = append(st.Debt, planDebt(backends.DebtSafetyValve, err.Error(), judged))
	}
	return st, nil
}

// writable reports whether this process may create files in dir, or in
// the nearest existing directory above it (where dir would be created).
func writable(dir string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		err := unix.Access(d, unix.W_OK|unix.X_OK)
		if err == nil {
			return true
		}
		if !errors.Is(err, unix.ENOENT) || d == filepath.Dir(d) {
			return false
		}
	}
}

// fromStats fills e from a plan's stats.
func (e *Explanation) fromStats(t config.Target, s backends.Stats) {
	e.Records, e.Bytes = s.RecordsBefore, s.BytesBefore
	e.Ages = AgeRows(s.Ages)
	e.Remove = ExplainRemove{Records: s.Removed(), ByAge: s.RemovedAge, ByCount: s.RemovedCount, ByBytes: s.RemovedBytes,
		Freed: s.Reclaimed(), Estimated: s.Stream != nil && s.Stream.Estimated}
	e.Keep = ExplainKeep{Records: s.RecordsAfter, Bytes: s.BytesAfter}
	if s.HasOldest {
		o := Stamp(s.OldestKept)
		e.Keep.Oldest = &o
	}
	e.Corrupt, e.Blank = s.Quarantined, s.BlankLines
	e.setFuture(s.Future, s.NewestFuture)
	held := false
	for _, d := range s.Debt {
		h := ExplainHeld{Reason: string(d.Reason), Detail: d.Detail, Records: d.Records, Bytes: d.Bytes, Estimated: d.Estimated}
		if d.HasOldest {
			o := Stamp(d.Oldest)
			h.Oldest = &o
		}
		held = held || d.Reason == backends.DebtHeldByGroup
		e.Held = append(e.Held, h)
	}
	if !held && s.Stream != nil {
		// Backends that report held-back entries only as StreamStats.
		for _, h := range s.Stream.HeldBack {
			e.Held = append(e.Held, ExplainHeld{Reason: string(backends.DebtHeldByGroup),
				Detail: fmt.Sprintf("group %s of %s", h.Group, h.Stream), Records: h.Entries, Bytes: -1, Estimated: h.Estimated})
		}
	}
	if seg := s.Segments; seg != nil && seg.Active && t.Path != "" {
		e.Active = &ExplainActive{Path: t.Path, Bytes: seg.ActiveBytes}
	}
	e.Notes = append(e.Notes, s.Notes...)
}

func (e *Explanation) setFuture(n int64, newest float64) {
	e.Future.Records = n
	if n > 0 {
		s := Stamp(newest)
		e.Future.Newest = &s
		e.Future.Ahead = Ahead(newest, e.Now)
	}
}

// fromState fills e from the last successful run recorded in the state
// directory (world-readable, so any user can).
func (e *Explanation) fromState(stateDir, target string) {
	st, found, err := LoadTargetState(stateDir, target)
	if err != nil {
		e.Notes = append(e.Notes, err.Error())
	}
	if e.Backend == "" {
		e.Backend = st.Backend
	}
	s := st.Store
	if !found || s.At.IsZero() {
		e.Source = SourceNone
		return
	}
	e.Source = SourceLastRun
	at := s.At.UTC()
	e.AsOf = &at
	if !s.Exists {
		e.Missing = true
		return
	}
	e.Records, e.Bytes = s.RecordsBefore, s.BytesBefore
	e.Ages = s.Ages
	e.Remove = ExplainRemove{Records: s.Removed, Freed: s.Reclaimed}
	e.Keep = ExplainKeep{Records: s.RecordsAfter, Bytes: s.BytesAfter}
	if s.HasOldest {
		o := Stamp(s.OldestKept)
		e.Keep.Oldest = &o
	}
	e.Corrupt = s.Quarantined
	e.Future.Records = s.Future
	if s.Future > 0 && s.NewestFuture != nil {
		e.Future.Newest = s.NewestFuture
		e.Future.Ahead = Ahead(float64(*s.NewestFuture), s.At)
	}
	held := false
	for _, d := range st.Debt {
		if !d.Owes() {
			continue
		}
		h := ExplainHeld{Reason: d.Reason, Detail: d.Detail, Records: d.Records, Bytes: d.Bytes, Estimated: d.Estimated}
		if d.HasOldest {
			o := Stamp(d.Oldest)
			h.Oldest = &o
		}
		held = held || d.Reason == string(backends.DebtHeldByGroup)
		e.Held = append(e.Held, h)
	}
	if !held {
		for _, h := range s.HeldBackBy {
			e.Held = append(e.Held, ExplainHeld{Reason: string(backends.DebtHeldByGroup),
				Detail: fmt.Sprintf("group %s of %s", h.Group, h.Stream), Records: h.Entries, Bytes: -1})
		}
	}
}
