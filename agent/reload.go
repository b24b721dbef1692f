package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// DefaultDebounce is how long the reloader waits after the last change to
// the configuration file before reading it: an editor's save or dpkg's
// replace is several events (create, write, rename) within milliseconds.
const DefaultDebounce = 100 * time.Millisecond

// Snapshot is one loaded configuration and the agent built from it. It is
// immutable once published: a compaction that started under it keeps
// using it even after a reload has published another one.
type Snapshot struct {
	Config *config.Config
	Agent  *Agent
	// Gen numbers the snapshots of one reloader, 1 for the first.
	Gen uint64
	// Loaded is when it was published.
	Loaded time.Time
}

// ReloadStatus is the outcome of the latest load attempt, for `status`,
// metrics and the service status line.
type ReloadStatus struct {
	// At is when the latest attempt ended.
	At time.Time
	// Trigger says what started it: "start", "SIGHUP", "file change".
	Trigger string
	// OK is false when the latest attempt was rejected; the last good
	// configuration is then still in use.
	OK bool
	// Err is why it was rejected: every problem, each a
	// *config.FieldError when it is one of the file's.
	Err error
	// SuccessAt is when a configuration was last published.
	SuccessAt time.Time
}

// ReloaderOptions configure NewReloader.
type ReloaderOptions struct {
	// Path is the configuration file.
	Path string
	// Registry builds the backends; every target is built once, off to
	// the side, before a configuration is published.
	Registry *backends.Registry
	// Logger receives the outcome of every reload.
	Logger *slog.Logger
	// Notifier is told RELOADING=1 … READY=1 around each reload; nil
	// tells nobody.
	Notifier *Notifier
	// Debounce is the quiet time after a file change before reloading;
	// zero means DefaultDebounce.
	Debounce time.Duration
	// OnReload, when set, is called after every attempt, successful or
	// not, including the first load (metrics: config_last_reload_*).
	OnReload func(ReloadStatus)
	// OnSwap, when set, is called after a new snapshot is published
	// (the scheduler picks up added and removed targets).
	OnSwap func(*Snapshot)
}

// Reloader owns the daemon's configuration: it loads it, and reloads it on
// SIGHUP and when the file changes.
//
// A reload parses, validates and builds everything from the new file
// before anything uses it, then publishes it with one atomic pointer
// store. Guarantees: a consumer sees either the old snapshot or the new
// one, whole; a file that fails anywhere (syntax, validation, a backend
// refusing its target) is never published, and the last good snapshot
// stays in use. Not guaranteed: work already running keeps the snapshot it
// started with (that is the point), so for a while two snapshots are in
// use. Alertmanager's coordinator publishes first and then lets
// subscribers fail, which leaves a half-applied config; here nothing can
// fail after the store.
//
// The file is watched through its parent directory, because editors and
// dpkg replace it by renaming a new file over it: a watch on the file
// itself would follow the old inode and never fire again.
type Reloader struct {
	opts   ReloaderOptions
	path   string // absolute
	log    *slog.Logger
	cur    atomic.Pointer[Snapshot]
	status atomic.Pointer[ReloadStatus]

	mu          sync.Mutex // serializes reloads
	gen         uint64
	lastRaw     []byte // content of the latest attempt, to skip no-op events
	lastReadErr string // why the latest attempt could not read the file, "" when it could

	wg sync.WaitGroup
}

// NewReloader loads the configuration at opts.Path. A file that does not
// load is an error: there is no last good configuration to keep yet.
func NewReloader(opts ReloaderOptions) (*Reloader, error) {
	abs, err := filepath.Abs(opts.Path)
	if err != nil {
		return nil, fmt.Errorf("config path %s: %w", opts.Path, err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	r := &Reloader{opts: opts, path: abs, log: opts.Logger}
	if err := r.load("start", loadInitial); err != nil {
		return nil, err
	}
	return r, nil
}

// Current returns the snapshot in use. It never returns nil.
func (r *Reloader) Current() *Snapshot { return r.cur.Load() }

// Status returns the outcome of the latest load attempt.
func (r *Reloader) Status() ReloadStatus { return *r.status.Load() }

// Reload reloads now, whatever the file's content, as SIGHUP does. It
// returns why the new configuration was rejected, or nil when it is in
// use.
func (r *Reloader) Reload(trigger string) error {
	return r.load(trigger, loadAlways)
}

// Start installs the SIGHUP handler and the directory watch, then reloads
// on them in a goroutine until ctx is done (Wait waits for it). Both are
// in place when Start returns, so a SIGHUP sent after READY=1 cannot kill
// the process with its default action.
func (r *Reloader) Start(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", r.path, err)
	}
	watched := map[string]bool{}
	if err := r.arm(w, watched); err != nil {
		w.Close()
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer w.Close()
		defer signal.Stop(hup)
		r.watch(ctx, w, hup, watched)
	}()
	return nil
}

// Wait waits until the goroutine Start began has stopped.
func (r *Reloader) Wait() { r.wg.Wait() }

// watchDirs lists the directories whose entries decide what path reads
// now: the directory of the path as given and of every symlink it goes
// through (a config kept elsewhere and linked into /etc changes there; a
// Kubernetes ConfigMap swaps a "..data" symlink next to the file), each
// as its real directory, and for a directory that does not exist (deleted
// to be recreated) its nearest existing ancestor, whose events say when
// it is back.
func watchDirs(path string) []string {
	var dirs []string
	add := func(d string) {
		for {
			if fi, err := os.Stat(d); err == nil && fi.IsDir() {
				break
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
		if real, err := filepath.EvalSymlinks(d); err == nil {
			d = real
		}
		if !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	p := path
	for range 40 { // as many hops as the kernel follows
		dir := filepath.Dir(p)
		add(dir)
		// A symlinked directory on the way (..data) is swapped in the
		// directory that holds it.
		if fi, err := os.Lstat(dir); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			add(filepath.Dir(dir))
		}
		target, err := os.Readlink(p)
		if err != nil {
			break
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		p = target
	}
	return dirs
}

// arm makes the watch cover watchDirs now: watches what the path
// resolves to after a swap, and re-arms a directory deleted and
// recreated (the kernel drops a watch with its directory). It changes
// watched to match.
func (r *Reloader) arm(w *fsnotify.Watcher, watched map[string]bool) error {
	want := watchDirs(r.path)
	var errs []error
	for _, d := range want {
		// Added again even when watched: a directory recreated under
		// the same name is a new inode the old watch does not see.
		if err := w.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("watch directory %s: %w", d, err))
			continue
		}
		watched[d] = true
	}
	for d := range watched {
		if !slices.Contains(want, d) {
			_ = w.Remove(d)
			delete(watched, d)
		}
	}
	if len(watched) == 0 {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		r.log.Warn("watching the configuration", "err", err)
	}
	return nil
}

func (r *Reloader) watch(ctx context.Context, w *fsnotify.Watcher, hup <-chan os.Signal, watched map[string]bool) {
	debounce := time.NewTimer(0)
	if !debounce.Stop() {
		<-debounce.C
	}
	for {
		select {
		case <-ctx.Done():
			debounce.Stop()
			return
		case <-hup:
			_ = r.Reload("SIGHUP")
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			// Chmod alone changes nothing we read. Any other change in a
			// watched directory may change what the path resolves to or
			// reads (a rename over it, a symlink swapped, the directory
			// itself removed or created): the reload compares contents,
			// so an unrelated file costs a read.
			if ev.Op == fsnotify.Chmod {
				continue
			}
			r.log.Debug("config directory changed", "event", ev.Op.String(), "file", ev.Name)
			debounce.Reset(r.opts.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			// An overflowed inotify queue may have dropped our event:
			// reload to be sure.
			r.log.Warn("watching the config directory", "err", err)
			debounce.Reset(r.opts.Debounce)
		case <-debounce.C:
			if err := r.arm(w, watched); err != nil {
				r.log.Warn("watching the configuration", "err", err)
			}
			_ = r.load("file change", loadIfChanged)
		}
	}
}

// loadMode says when load reads and publishes.
type loadMode int

const (
	// loadInitial is the first load: nothing to keep, nobody to tell.
	loadInitial loadMode = iota
	// loadAlways reloads whatever the content (SIGHUP, Reload).
	loadAlways
	// loadIfChanged reloads after a file event, unless the content is
	// what the latest attempt already read (a touch, a configuration
	// manager rewriting the same bytes): RELOADING=1 storms help nobody.
	loadIfChanged
)

// load reads, validates and builds the configuration, then publishes it.
// A reload is announced with RELOADING=1 and closed with READY=1 whatever
// its outcome, since the service runs on either way.
func (r *Reloader) load(trigger string, mode loadMode) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	raw, err := config.ReadFile(r.path)
	if err == nil && mode == loadIfChanged && r.lastRaw != nil && bytes.Equal(raw, r.lastRaw) {
		r.log.Debug("config file unchanged; not reloading", "file", r.path)
		return nil
	}
	// A file still unreadable for the same reason (its directory gone,
	// while events come from the parent's other entries) is no news.
	readErr := ""
	if err != nil {
		readErr = err.Error()
		if mode == loadIfChanged && readErr == r.lastReadErr {
			return err
		}
	}
	r.lastReadErr = readErr
	// After a failed read, any content counts as a change.
	r.lastRaw = raw
	if mode != loadInitial {
		r.opts.Notifier.Reloading()
		defer r.opts.Notifier.Ready()
	}
	var snap *Snapshot
	if err == nil {
		snap, err = r.build(raw)
	}
	now := time.Now()
	st := ReloadStatus{At: now, Trigger: trigger, OK: err == nil, Err: err}
	if prev := r.status.Load(); prev != nil {
		st.SuccessAt = prev.SuccessAt
	}
	if err != nil {
		r.status.Store(&st)
		if mode != loadInitial {
			// The first load's error goes to the caller, which exits.
			r.logRejected(trigger, err)
		}
		if r.opts.OnReload != nil {
			r.opts.OnReload(st)
		}
		return err
	}
	r.gen++
	snap.Gen, snap.Loaded = r.gen, now
	st.SuccessAt = now
	r.cur.Store(snap) // the one point where the new configuration takes effect
	r.status.Store(&st)
	r.log.Info("configuration loaded", "file", r.path, "trigger", trigger,
		"targets", len(snap.Config.Targets), "generation", snap.Gen)
	for _, w := range snap.Config.Warnings {
		r.log.Warn("configuration warning", "err", w, "file", w.File, "line", w.Line, "field", w.Field)
	}
	if r.opts.OnReload != nil {
		r.opts.OnReload(st)
	}
	if r.opts.OnSwap != nil {
		r.opts.OnSwap(snap)
	}
	return nil
}

// build parses and validates raw, checks the change is one a running
// daemon can take, and builds every target's backend once to let its
// factory refuse it (a kind this build lacks, a bad address).
func (r *Reloader) build(raw []byte) (*Snapshot, error) {
	cfg, err := config.Parse(r.path, raw)
	if err != nil {
		return nil, err
	}
	var errs []error
	if old := r.cur.Load(); old != nil {
		// Two runs of one store exclude each other through a lock file
		// in lock_dir, and a killed swap is finished from its record in
		// state_dir. A run in flight keeps the old directories, so a new
		// run under new ones would neither see its lock nor its record.
		for _, d := range []struct{ field, was, now string }{
			{"lock_dir", old.Config.LockDir, cfg.LockDir},
			{"state_dir", old.Config.StateDir, cfg.StateDir},
		} {
			if d.was != d.now {
				errs = append(errs, &config.FieldError{File: r.path, Field: d.field, Value: d.now,
					Err: fmt.Errorf("%w: cannot change while the daemon runs (it is %s); restart the service to apply it",
						config.ErrInvalidValue, d.was)})
			}
		}
	}
	for i, t := range cfg.Targets {
		b, err := r.opts.Registry.New(t, envFor(cfg, t, slog.New(slog.DiscardHandler)))
		if err != nil {
			errs = append(errs, &config.FieldError{File: r.path, Line: t.Line,
				Field: fmt.Sprintf("targets[%d]", i), Err: fmt.Errorf("%w: %w", config.ErrInvalidValue, err)})
			continue
		}
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("target %s: close probe backend: %w", t.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	a := New(cfg, r.opts.Registry, r.log)
	if old := r.cur.Load(); old != nil && old.Agent != nil {
		// Runs of the old snapshot may still be in flight: one budget.
		a.space = old.Agent.space
	}
	return &Snapshot{Config: cfg, Agent: a}, nil
}

// logRejected logs a rejected configuration, one entry per problem so that
// each carries its own file, line and field.
func (r *Reloader) logRejected(trigger string, err error) {
	var problems []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		problems = j.Unwrap()
	} else {
		problems = []error{err}
	}
	for _, p := range problems {
		attrs := []any{"trigger", trigger, "err", p}
		var fe *config.FieldError
		if errors.As(p, &fe) {
			attrs = append(attrs, "file", fe.File, "line", fe.Line, "field", fe.Field)
		} else {
			attrs = append(attrs, "file", r.path)
		}
		r.log.Error("configuration rejected; keeping the last good one", attrs...)
	}
}

// StatusLine describes s for the service status line, or "" when the
// latest attempt succeeded.
func (s ReloadStatus) StatusLine() string {
	if s.OK {
		return ""
	}
	first := s.Err
	if j, ok := s.Err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		first = j.Unwrap()[0]
	}
	return fmt.Sprintf("config reload failed at %s: %v; running the last good config",
		s.At.Format("15:04:05"), first)
}
