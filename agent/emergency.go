package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// Emergency free space (a target's keep_free, journald's SystemKeepFree=).
//
// When the space an unprivileged writer can still use on a file system
// (statfs f_bavail: Papyra runs unprivileged, so the blocks reserved for
// root are not its) falls below keep_free, the oldest whole rotated
// segments of the stores that opted in on that file system are removed
// until it is met again. Stores are grouped by st_dev; when several set
// different keep_free, the largest applies to all of them.
//
// Order. Candidates of every opted-in store on the file system are
// merged and dropped by the time of their newest record, oldest first
// (ties: the older position in its store, then configuration order).
// Ordering by the newest record, not the oldest, is what keeps a drop
// from removing a record newer than one left behind: when a segment goes,
// every record in it is no newer than its newest, and every segment left
// has a newest at least as new; ordering by the oldest record would let a
// long segment that starts early but ends late go before a short one that
// lies wholly before its end.
//
// Never: the active file (the backend never offers it), a store that did
// not opt in (it is not looked at), a segment whose newest record (or,
// with lines whose time cannot be read, whose last write) is younger than
// the store's min_keep, a store whose clock guard says its timestamps are
// not Unix time, a store another run holds the lock of (it is skipped
// this time). Each drop holds the store's lock and goes through the
// backend's own drop (backends.Shedder), which quarantines the segment's
// corrupt lines first and removes nothing when that fails.

// Messages of emergency drops, catalogued in the journal.
const (
	MsgEmergencyDrop  = "emergency drop"
	MsgKeepFreeUnmet  = "keep_free not met"
	MsgEmergencyBelow = "free space below keep_free"
	// MsgKeepFreeMet is the daemon's word that a file system it had
	// logged MsgKeepFreeUnmet for has keep_free free again (see
	// UnmetLog); a pass has nothing to compare with and never says it.
	MsgKeepFreeMet = "keep_free met again"
)

// UnmetReminderEvery is how often the daemon repeats MsgKeepFreeUnmet
// while a file system stays unmet for the same cause. The check runs
// every minute, and a file system filled by stores that did not opt in
// can stay unmet for days: one error a minute would bury everything else
// in the journal and teach operators to skip it. The metrics, the state
// and `status` carry the standing condition on every check; the journal
// needs the change, and a reminder often enough that a look at the last
// hour (`journalctl --since -1h`, a log alert with an hour's window)
// still finds it: hourly is 24 lines a day instead of 1440.
const UnmetReminderEvery = time.Hour

// EmergencyDrop is one segment removed to free space.
type EmergencyDrop struct {
	Target, Kind string
	Segment      string
	backends.ShedStats
	At time.Time
}

// EmergencyFS is what one check did on one file system.
type EmergencyFS struct {
	Dev uint64
	// Dir is the directory of the first opted-in store on it.
	Dir string
	// Targets are the opted-in targets whose stores are on it.
	Targets []string
	// Size is the file system's size; KeepFree the largest keep_free of
	// its targets in bytes; Free the space an unprivileged writer could
	// use before and after the check.
	Size, KeepFree, FreeBefore, FreeAfter int64
	Drops                                 []EmergencyDrop
	// Unmet says why keep_free is still not met after the check; "" when
	// it is.
	Unmet string
	// cause is what of Unmet makes it a new verdict for the log;
	// partial says a store was not looked at, so that cause may miss
	// what it would have found (see unmetCause).
	cause   string
	partial bool
}

// EmergencyReport is one check over every opted-in file system.
type EmergencyReport struct {
	At          time.Time
	FileSystems []EmergencyFS
}

// EmergencyOptions configure one check.
type EmergencyOptions struct {
	// Now judges min_keep; zero means the wall clock.
	Now time.Time
	// Unmet is the memory of a process that checks again and again (the
	// daemon): with it, MsgKeepFreeUnmet is logged when a file system
	// becomes unmet or the cause changes, then once every
	// UnmetReminderEvery, and MsgKeepFreeMet when it is met again; the
	// warnings of a check of a file system already reported unmet go to
	// debug. Nil logs every verdict: a `run` pass is a process of its
	// own, so there is nothing it would repeat.
	Unmet *UnmetLog
}

// UnmetLog remembers, per file system (st_dev), which keep_free-not-met
// verdict was last logged and when. The zero value is ready to use.
type UnmetLog struct {
	// Now is the clock of the reminders; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
	fs map[uint64]unmetLogged
}

// unmetLogged is what was logged about one unmet file system.
type unmetLogged struct {
	cause string
	// since is when it was first logged unmet, last when it was last
	// logged.
	since, last time.Time
}

func (u *UnmetLog) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

// quiet reports whether dev was logged unmet and no reminder is due: the
// warnings of its check then go to debug. Nil is never quiet.
func (u *UnmetLog) quiet(dev uint64) bool {
	if u == nil {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.fs[dev]
	return ok && u.now().Sub(e.last) < UnmetReminderEvery
}

// unmet records that dev is unmet for cause and reports whether to log
// it: the first time, when the cause changed, or as a reminder once
// UnmetReminderEvery has passed since it was last logged. since is when
// it was first logged (for a reminder). A partial cause (a store another
// run held the lock of was not looked at) does not replace a known one:
// the store's failure may well still be there, and a compaction in
// flight would otherwise log the error twice, once for a cause missing
// it and once when it comes back.
func (u *UnmetLog) unmet(dev uint64, cause string, partial bool) (log, reminder bool, since time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := u.now()
	e, ok := u.fs[dev]
	switch {
	case !ok || e.cause != cause && !partial:
		if !ok {
			e.since = now
		}
		if u.fs == nil {
			u.fs = map[uint64]unmetLogged{}
		}
		u.fs[dev] = unmetLogged{cause: cause, since: e.since, last: now}
		return true, false, e.since
	case now.Sub(e.last) >= UnmetReminderEvery:
		e.last = now
		u.fs[dev] = e
		return true, true, e.since
	}
	return false, false, e.since
}

// met forgets dev and reports whether it had been logged unmet, and
// since when.
func (u *UnmetLog) met(dev uint64) (was bool, since time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e, ok := u.fs[dev]
	delete(u.fs, dev)
	return ok, e.since
}

// forget drops, without a word, every file system but those in checked:
// one no longer checked (its targets dropped keep_free or went away) has
// no verdict to continue, and is logged afresh should it come back
// unmet.
func (u *UnmetLog) forget(checked []uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for dev := range u.fs {
		if !slices.Contains(checked, dev) {
			delete(u.fs, dev)
		}
	}
}

// OptedIn reports whether any target of cfg set keep_free.
func OptedIn(cfg *config.Config) bool {
	return slices.ContainsFunc(cfg.Targets, func(t config.Target) bool { return t.KeepFree != nil })
}

// fsSpace is one statfs of a file system.
type fsSpace struct {
	dev         uint64
	avail, size int64
}

// statSpace returns the file system holding dir: its st_dev, the bytes
// an unprivileged writer may still use, and its size.
func statSpace(dir string) (fsSpace, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fsSpace{}, fmt.Errorf("stat %s: %w", dir, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fsSpace{}, fmt.Errorf("statfs %s: %w", dir, err)
	}
	avail, size := fsutil.Usable(&fs)
	return fsSpace{dev: uint64(st.Dev), avail: avail, size: size}, nil
}

// emStore is one opted-in store during a check.
type emStore struct {
	t      config.Target
	order  int
	b      backends.Backend
	sh     backends.Shedder
	lock   *Lock
	pol    backends.ShedPolicy
	cands  []backends.ShedSegment
	failed string // why it is passed over for the rest of the check
	// dropFailed: failed is a drop that failed; locked: failed is
	// another run holding the store's lock.
	dropFailed, locked bool
}

func (s *emStore) close() {
	if s.b != nil {
		s.b.Close()
	}
	if s.lock != nil {
		s.lock.Unlock()
	}
}

// Emergency checks every file system holding an opted-in store and, where
// free space is below keep_free, drops segments until it is met (see the
// comment at the top of this file). It never fails: what went wrong is
// logged and in the report.
func (a *Agent) Emergency(ctx context.Context, o EmergencyOptions) EmergencyReport {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	rep := EmergencyReport{At: now}
	byDev := map[uint64]*EmergencyFS{}
	var order []uint64
	targets := map[uint64][]int{}
	for i, t := range a.cfg.Targets {
		if t.KeepFree == nil {
			continue
		}
		dir := filepath.Dir(t.Path)
		sp, err := statSpace(dir)
		if err != nil {
			// A store not created yet takes no space.
			a.log.Debug("emergency check: store directory not there", "target", t.Name, "err", err)
			continue
		}
		f, ok := byDev[sp.dev]
		if !ok {
			f = &EmergencyFS{Dev: sp.dev, Dir: dir, Size: sp.size, FreeBefore: sp.avail, FreeAfter: sp.avail}
			byDev[sp.dev] = f
			order = append(order, sp.dev)
		}
		f.Targets = append(f.Targets, t.Name)
		f.KeepFree = max(f.KeepFree, t.KeepFree.Of(sp.size))
		targets[sp.dev] = append(targets[sp.dev], i)
	}
	for _, dev := range order {
		f := byDev[dev]
		if f.FreeBefore < f.KeepFree && ctx.Err() == nil {
			a.shed(ctx, f, targets[dev], now, o.Unmet.quiet(dev))
		}
		a.logVerdict(ctx, f, o.Unmet)
		rep.FileSystems = append(rep.FileSystems, *f)
	}
	if o.Unmet != nil {
		o.Unmet.forget(order)
	}
	return rep
}

// logVerdict logs what the check of f found: every keep_free not met
// without u (a pass), and with u (the daemon) only its changes and
// reminders (see EmergencyOptions.Unmet). The report, and so the state
// and metrics, say it on every check whatever is logged.
func (a *Agent) logVerdict(ctx context.Context, f *EmergencyFS, u *UnmetLog) {
	log := a.log.With("dir", f.Dir)
	switch {
	case f.Unmet != "" && u == nil:
		log.Error(MsgKeepFreeUnmet, "free_bytes", f.FreeAfter, "keep_free_bytes", f.KeepFree, "reason", f.Unmet)
	case f.Unmet != "":
		// A check stopped short (the daemon is stopping) judges nothing
		// new: what it left undone, the next process's check does.
		if ctx.Err() != nil {
			return
		}
		if ok, reminder, since := u.unmet(f.Dev, f.cause, f.partial); ok {
			attrs := []any{"free_bytes", f.FreeAfter, "keep_free_bytes", f.KeepFree, "reason", f.Unmet}
			if reminder {
				attrs = append(attrs, "reminder", true, "unmet_since", since)
			}
			log.Error(MsgKeepFreeUnmet, attrs...)
		}
	case u != nil && f.FreeAfter >= f.KeepFree:
		if was, since := u.met(f.Dev); was {
			log.Info(MsgKeepFreeMet, "free_bytes", f.FreeAfter, "keep_free_bytes", f.KeepFree, "unmet_since", since)
		}
	}
}

// shed frees space on one file system. quiet sends its warnings to
// debug: the daemon already reported the file system unmet.
func (a *Agent) shed(ctx context.Context, f *EmergencyFS, idx []int, now time.Time, quiet bool) {
	log := a.log.With("dir", f.Dir)
	warn, fail := slog.LevelWarn, slog.LevelError
	if quiet {
		warn, fail = slog.LevelDebug, slog.LevelDebug
	}
	log.Log(ctx, warn, MsgEmergencyBelow, "free_bytes", f.FreeBefore, "keep_free_bytes", f.KeepFree, "targets", strings.Join(f.Targets, ","))
	var stores []*emStore
	defer func() {
		for _, s := range stores {
			s.close()
		}
	}()
	keys := map[string]bool{}
	for n, i := range idx {
		t := a.cfg.Targets[i]
		s := &emStore{t: t, order: n, pol: backends.ShedPolicy{Now: now, MinKeep: time.Duration(*t.MinKeep), Cache: a.shedCache}}
		stores = append(stores, s)
		s.failed = a.openShed(ctx, s, keys)
		if s.failed != "" {
			log.Log(ctx, warn, "emergency check: store passed over", "target", t.Name, "reason", s.failed)
		}
	}
	type cand struct {
		s *emStore
		c backends.ShedSegment
	}
	var cands []cand
	for _, s := range stores {
		for _, c := range s.cands {
			if c.Keep == "" {
				cands = append(cands, cand{s, c})
			}
		}
	}
	slices.SortStableFunc(cands, func(x, y cand) int {
		switch {
		case x.c.Time != y.c.Time:
			return cmpFloat(x.c.Time, y.c.Time)
		case x.s != y.s:
			return x.s.order - y.s.order
		}
		return y.c.Position - x.c.Position
	})
	free := f.FreeBefore
	dropped := map[*emStore]map[uint64]bool{}
	for _, c := range cands {
		if free >= f.KeepFree || ctx.Err() != nil {
			break
		}
		if c.s.failed != "" {
			continue
		}
		st, err := c.s.sh.Shed(ctx, c.s.pol, c.c)
		if err != nil {
			c.s.failed, c.s.dropFailed = fmt.Sprintf("emergency drop of %s failed: %v", c.c.Name, err), true
			log.Log(ctx, fail, "emergency drop failed; the store is passed over until the next check", "target", c.s.t.Name, "segment", c.c.Name, "err", err)
			continue
		}
		if dropped[c.s] == nil {
			dropped[c.s] = map[uint64]bool{}
		}
		dropped[c.s][c.c.Ino] = true
		d := EmergencyDrop{Target: c.s.t.Name, Kind: c.s.t.Kind, Segment: c.c.Name, ShedStats: st, At: time.Now()}
		f.Drops = append(f.Drops, d)
		if sp, err := statSpace(f.Dir); err == nil {
			free = sp.avail
		} else {
			free += st.Bytes
		}
		logDrop(ctx, log, d, free, f.KeepFree)
	}
	f.FreeAfter = free
	if free < f.KeepFree {
		f.Unmet = unmetReason(stores, dropped, free, f.KeepFree, ctx.Err())
		f.cause, f.partial = unmetCause(stores)
	}
}

// unmetCause is what makes a keep_free-not-met verdict a new one for the
// daemon's log: the stores a drop failed in, the stores passed over, or
// else nothing left that may go. Sizes and counts are left out (they
// move on every check), and so is a store whose lock another run holds:
// a compaction in flight holds it for a while, and the next check looks
// at it again. partial says there was such a store, so the cause may
// miss what it holds (see UnmetLog.unmet).
func unmetCause(stores []*emStore) (cause string, partial bool) {
	var failed, passed []string
	for _, s := range stores {
		switch {
		case s.dropFailed:
			failed = append(failed, s.t.Name)
		case s.locked:
			partial = true
		case s.failed != "":
			passed = append(passed, s.t.Name)
		}
	}
	var parts []string
	if len(failed) > 0 {
		parts = append(parts, "drop failed: "+strings.Join(failed, ","))
	}
	if len(passed) > 0 {
		parts = append(parts, "passed over: "+strings.Join(passed, ","))
	}
	if len(parts) == 0 {
		return "nothing left to drop", partial
	}
	return strings.Join(parts, "; "), partial
}

// openShed locks s's store, builds its backend and lists its candidates;
// it returns why the store is passed over, "" when it is not.
func (a *Agent) openShed(ctx context.Context, s *emStore, keys map[string]bool) string {
	t := s.t
	key, err := a.reg.LockKey(t)
	if err != nil {
		return err.Error()
	}
	if keys[key] {
		return "another target names the same store"
	}
	keys[key] = true
	// Its own free-space budget, not the agent's shared one (env.Space
	// unset): a drop may write into the headroom (Shedder), which must
	// not extend to the compactions in flight beside it.
	env := envFor(a.cfg, t, a.log.With("target", t.Name, "backend", t.Kind))
	env.LockKey = key
	if s.b, err = a.reg.New(t, env); err != nil {
		return err.Error()
	}
	sh, ok := s.b.(backends.Shedder)
	if !ok {
		return fmt.Sprintf("kind %s cannot drop parts of its store", t.Kind)
	}
	s.sh = sh
	if key != "" {
		if s.lock, err = TryLock(a.cfg.LockDir, key, t.Name+" (emergency)"); err != nil {
			s.locked = errors.Is(err, backends.ErrLocked)
			return err.Error()
		}
	}
	if err := s.b.Recover(ctx); err != nil {
		return fmt.Sprintf("recover from an interrupted run: %v", err)
	}
	if s.cands, err = sh.ShedCandidates(ctx, s.pol); err != nil {
		if errors.Is(err, backends.ErrNothingToDo) {
			return ""
		}
		return err.Error()
	}
	return ""
}

// unmetReason says in plain words what is left that may not go.
func unmetReason(stores []*emStore, dropped map[*emStore]map[uint64]bool, free, keep int64, ctxErr error) string {
	var young, youngBytes int64
	var passed []string
	for _, s := range stores {
		if s.failed != "" {
			passed = append(passed, s.t.Name+": "+s.failed)
		}
		for _, c := range s.cands {
			if c.Keep != "" && !dropped[s][c.Ino] {
				young++
				youngBytes += c.Size
			}
		}
	}
	parts := []string{fmt.Sprintf("%s free, keep_free %s", bytesize.IEC(free), bytesize.IEC(keep))}
	if ctxErr != nil {
		parts = append(parts, "the check was stopped")
	}
	left := "left: the active files, which are never dropped"
	if young > 0 {
		left = fmt.Sprintf("left: %d rotated %s (%s) holding records younger than min_keep (or stamped after now), and the active files, which are never dropped",
			young, plural(young, "segment", "segments"), bytesize.IEC(youngBytes))
	}
	parts = append(parts, left)
	if len(passed) > 0 {
		parts = append(parts, "passed over: "+strings.Join(passed, "; "))
	}
	return strings.Join(parts, "; ")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// logDrop logs one drop with its record range and time span.
func logDrop(ctx context.Context, log *slog.Logger, d EmergencyDrop, free, keep int64) {
	attrs := []slog.Attr{
		slog.String("target", d.Target),
		slog.String("backend", d.Kind),
		slog.String("segment", d.Segment),
		slog.Int64("records", d.Records),
		slog.Int64("other_lines", d.Other),
		slog.Int64("bytes", d.Bytes),
		slog.Int64("quarantined", d.Quarantined),
		slog.Int64("free_bytes", free),
		slog.Int64("keep_free_bytes", keep),
	}
	if d.HasTimes {
		attrs = append(attrs,
			slog.String("first", FormatTimestamp(d.Oldest)),
			slog.String("last", FormatTimestamp(d.Newest)),
			slog.Duration("span", spanOf(d.Oldest, d.Newest)))
	}
	if d.QuarantineFile != "" {
		attrs = append(attrs, slog.String("quarantine_file", d.QuarantineFile))
	}
	log.LogAttrs(ctx, slog.LevelWarn, MsgEmergencyDrop, attrs...)
}

// spanOf is the time from a to b, 0 when it is not a finite duration.
func spanOf(a, b float64) time.Duration {
	d := b - a
	if math.IsNaN(d) || math.IsInf(d, 0) || d < 0 || d > float64(math.MaxInt64)/1e9 {
		return 0
	}
	return time.Duration(d * 1e9)
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// EmergencySummary is what `run` prints about one file system's check:
// a line per drop and one when keep_free is still not met; nothing when
// free space was above keep_free.
func EmergencySummary(f EmergencyFS) []string {
	var out []string
	for _, d := range f.Drops {
		line := fmt.Sprintf("%s: emergency drop of %s: %d records", d.Target, d.Segment, d.Records)
		if d.HasTimes {
			line += fmt.Sprintf(" from %s to %s (%s)", FormatTimestamp(d.Oldest), FormatTimestamp(d.Newest), spanOf(d.Oldest, d.Newest))
		}
		line += fmt.Sprintf(", %d bytes", d.Bytes)
		if d.Quarantined > 0 {
			line += fmt.Sprintf(", %d corrupt lines quarantined", d.Quarantined)
		}
		out = append(out, line)
	}
	if f.Unmet != "" {
		out = append(out, fmt.Sprintf("keep_free not met on the file system of %s (targets %s): %s", f.Dir, strings.Join(f.Targets, ", "), f.Unmet))
	}
	return out
}
