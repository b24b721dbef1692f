package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/memory"
	"github.com/papyra-compact/papyra-compact/config"
)

// memoryRegistry knows only the memory backend, so that a jsonl target
// is one this "build" cannot compact.
func memoryRegistry() *backends.Registry {
	r := backends.NewRegistry()
	r.Register(config.KindMemory, backends.Kind{New: memory.New})
	return r
}

// daemonYAML is a configuration with memory targets, its directories
// under dir. The targets start at line 7.
func daemonYAML(dir string, targets ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "state_dir: %s/state\nlock_dir: %s/lock\nquarantine_dir: %s/q\nmetrics:\n  textfile: \"\"\ntargets:\n",
		dir, dir, dir)
	for _, t := range targets {
		b.WriteString("  - {name: " + t + ", kind: memory, interval: 1h}\n")
	}
	return b.String()
}

// eventually polls cond until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func targetNames(s *agent.Snapshot) string {
	var names []string
	for _, t := range s.Config.Targets {
		names = append(names, t.Name)
	}
	return strings.Join(names, ",")
}

// syncBuffer is a log sink safe for the reloader's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startReloader writes content to dir/compact.yaml and starts a reloader
// on it, stopped when the test ends.
func startReloader(t *testing.T, dir, content string, opts agent.ReloaderOptions) (*agent.Reloader, string, *syncBuffer) {
	t.Helper()
	path := filepath.Join(dir, "compact.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	opts.Path = path
	if opts.Registry == nil {
		opts.Registry = memoryRegistry()
	}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	r, err := agent.NewReloader(opts)
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		r.Wait()
	})
	return r, path, logs
}

// replacements are the ways a configuration file gets a new content.
var replacements = []struct {
	name    string
	replace func(t *testing.T, path, content string)
}{
	{"EditorRename", func(t *testing.T, path, content string) {
		// Write a temp file next to it, rename it over (vim, emacs,
		// Ansible, most editors).
		tmp := filepath.Join(filepath.Dir(path), ".compact.yaml.swp")
		writeAndRename(t, tmp, path, content)
	}},
	{"DpkgNew", func(t *testing.T, path, content string) {
		// dpkg unpacks a conffile as <name>.dpkg-new, then renames it.
		writeAndRename(t, path+".dpkg-new", path, content)
	}},
	{"BackupThenWrite", func(t *testing.T, path, content string) {
		// Move the old file away, write a new one (vim's backupcopy=no).
		if err := os.Rename(path, path+"~"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}},
	{"InPlace", func(t *testing.T, path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}},
}

func writeAndRename(t *testing.T, tmp, path, content string) {
	t.Helper()
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestReloader_FileChange(t *testing.T) {
	for _, rp := range replacements {
		t.Run(rp.name, func(t *testing.T) {
			dir := t.TempDir()
			var swaps []string
			var mu sync.Mutex
			r, path, _ := startReloader(t, dir, daemonYAML(dir, "a"), agent.ReloaderOptions{
				OnSwap: func(s *agent.Snapshot) {
					mu.Lock()
					swaps = append(swaps, targetNames(s))
					mu.Unlock()
				},
			})
			first := r.Current()
			if got, want := targetNames(first), "a"; got != want {
				t.Fatalf("first load: got %v, want %v", got, want)
			}
			rp.replace(t, path, daemonYAML(dir, "a", "b"))
			eventually(t, 5*time.Second, "new targets loaded", func() bool { return targetNames(r.Current()) == "a,b" })

			if got := r.Current().Gen; got != 2 {
				t.Errorf("Gen: got %v, want 2 (one reload for the whole replace)", got)
			}
			st := r.Status()
			if !st.OK || st.Trigger != "file change" {
				t.Errorf("Status: got %+v, want OK after a file change", st)
			}
			// The old snapshot is untouched: work started under it
			// keeps seeing its targets.
			if got := targetNames(first); got != "a" {
				t.Errorf("old snapshot: got %v, want a", got)
			}
			// OnSwap runs just after the store.
			eventually(t, time.Second, "OnSwap for the first load and the reload", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return strings.Join(swaps, "|") == "a|a,b"
			})
		})
	}
}

func TestReloader_Invalid(t *testing.T) {
	dir := t.TempDir()
	var statuses []agent.ReloadStatus
	var mu sync.Mutex
	r, path, logs := startReloader(t, dir, daemonYAML(dir, "a"), agent.ReloaderOptions{
		OnReload: func(s agent.ReloadStatus) {
			mu.Lock()
			statuses = append(statuses, s)
			mu.Unlock()
		},
	})
	good := r.Current()

	// Line 8 is the second target.
	bad := daemonYAML(dir, "a") + "  - {name: b, kind: memory, max_agee: 7d}\n"
	writeAndRename(t, path+".dpkg-new", path, bad)
	eventually(t, 5*time.Second, "reload rejected", func() bool { return !r.Status().OK })

	if r.Current() != good {
		t.Errorf("Current: got generation %d, want the last good one kept", r.Current().Gen)
	}
	st := r.Status()
	var fe *config.FieldError
	if !errors.As(st.Err, &fe) || fe.Line != 8 || fe.Field != "targets[1].max_agee" || fe.File != path {
		t.Errorf("Err: got %v, want a FieldError at %s:8 targets[1].max_agee", st.Err, path)
	}
	if !errors.Is(st.Err, config.ErrUnknownField) {
		t.Errorf("Err: got %v, want ErrUnknownField", st.Err)
	}
	if st.SuccessAt.IsZero() || !st.SuccessAt.Before(st.At) {
		t.Errorf("SuccessAt: got %v, want the first load's time, before %v", st.SuccessAt, st.At)
	}
	wantLog := fmt.Sprintf("file=%s line=8 field=targets[1].max_agee", path)
	eventually(t, time.Second, "rejection logged", func() bool { return strings.Contains(logs.String(), wantLog) })
	if line := st.StatusLine(); !strings.Contains(line, path+":8: targets[1].max_agee: unknown field") ||
		!strings.Contains(line, "running the last good config") {
		t.Errorf("StatusLine: got %q", line)
	}

	// Fixing the file applies it.
	writeAndRename(t, path+".tmp", path, daemonYAML(dir, "a", "b"))
	eventually(t, 5*time.Second, "fixed config loaded", func() bool { return targetNames(r.Current()) == "a,b" })
	if !r.Status().OK || r.Status().StatusLine() != "" {
		t.Errorf("Status after the fix: got %+v, want OK", r.Status())
	}
	// OnReload runs just after the store: the first load, the
	// rejection, the fix.
	eventually(t, time.Second, "OnReload outcomes true, false, true", func() bool {
		mu.Lock()
		defer mu.Unlock()
		var oks []bool
		for _, s := range statuses {
			oks = append(oks, s.OK)
		}
		return slices.Equal(oks, []bool{true, false, true})
	})
}

func TestReloader_Rejects(t *testing.T) {
	tests := []struct {
		name    string
		content func(dir string) string
		want    string
	}{
		{"UnsupportedKind", func(dir string) string {
			return daemonYAML(dir, "a") + "  - {name: j, kind: jsonl, path: /srv/j.jsonl}\n"
		}, `compact.yaml:8: targets[1]: invalid value: target j: kind "jsonl" is not supported by this build`},
		{"LockDirChange", func(dir string) string {
			return strings.Replace(daemonYAML(dir, "a"), "lock_dir: "+dir+"/lock", "lock_dir: /run/elsewhere", 1)
		}, "compact.yaml: lock_dir: invalid value: cannot change while the daemon runs"},
		{"StateDirChange", func(dir string) string {
			return strings.Replace(daemonYAML(dir, "a"), "state_dir: "+dir+"/state", "state_dir: /var/lib/elsewhere", 1)
		}, "compact.yaml: state_dir: invalid value: cannot change while the daemon runs"},
		{"TextfileOnConfigFile", func(dir string) string {
			return strings.Replace(daemonYAML(dir, "a"), `textfile: ""`, "textfile: "+dir+"/compact.yaml", 1)
		}, "compact.yaml:5: metrics.textfile: is the same file as the configuration file itself"},
		{"Missing", func(string) string { return "" }, "compact.yaml: does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, path, _ := startReloader(t, dir, daemonYAML(dir, "a"), agent.ReloaderOptions{})
			if content := tt.content(dir); content != "" {
				if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			err := r.Reload("test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want it to contain %v", err, tt.want)
			}
			if got := r.Current().Gen; got != 1 {
				t.Errorf("Gen: got %v, want 1 (kept)", got)
			}
		})
	}
}

func TestReloader_InitialError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "compact.yaml")
	if err := os.WriteFile(path, []byte("targets:\n  - {name: a, kind: memory, interval: 0s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := agent.NewReloader(agent.ReloaderOptions{Path: path, Registry: memoryRegistry()})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Line != 2 || fe.Field != "targets[0].interval" {
		t.Errorf("got %v, want a FieldError at line 2, targets[0].interval", err)
	}
}

func TestReloader_SIGHUP(t *testing.T) {
	sock := notifyEnv(t, 0)
	n := agent.NewNotifier(nil, agent.NotifierOptions{})
	defer n.Close()
	dir := t.TempDir()
	r, _, _ := startReloader(t, dir, daemonYAML(dir, "a"), agent.ReloaderOptions{Notifier: n})

	// The file does not change: only the signal can cause this reload.
	// Start has installed the handler, so SIGHUP does not kill the test.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "reload on SIGHUP", func() bool { return r.Current().Gen == 2 })
	if got := r.Status().Trigger; got != "SIGHUP" {
		t.Errorf("Trigger: got %v, want SIGHUP", got)
	}
	if got := sock.Next(t, time.Second); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("got %q, want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := sock.Next(t, time.Second); got != "READY=1" {
		t.Errorf("got %q, want READY=1 after the reload", got)
	}
}

func TestReloader_UnchangedContentIsNoReload(t *testing.T) {
	dir := t.TempDir()
	content := daemonYAML(dir, "a")
	r, path, _ := startReloader(t, dir, content, agent.ReloaderOptions{})
	// Same bytes, new inode, then a real change: only the latter counts.
	writeAndRename(t, path+".tmp", path, content)
	time.Sleep(3 * agent.DefaultDebounce)
	writeAndRename(t, path+".tmp", path, daemonYAML(dir, "a", "c"))
	eventually(t, 5*time.Second, "change loaded", func() bool { return targetNames(r.Current()) == "a,c" })
	if got := r.Current().Gen; got != 2 {
		t.Errorf("Gen: got %v, want 2 (the identical rewrite skipped)", got)
	}
}

// startReloaderAt starts a reloader on path, which the test laid out.
func startReloaderAt(t *testing.T, path string) *agent.Reloader {
	t.Helper()
	r, err := agent.NewReloader(agent.ReloaderOptions{Path: path, Registry: memoryRegistry(), Debounce: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("NewReloader: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		r.Wait()
	})
	return r
}

// TestReloader_DirectoryRecreated: the configuration directory deleted
// and created again (a configuration manager, a restore) does not leave
// the watch deaf: every later edit is applied.
func TestReloader_DirectoryRecreated(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "etc", "papyra")
	must(t, os.MkdirAll(conf, 0o755))
	path := filepath.Join(conf, "compact.yaml")
	must(t, os.WriteFile(path, []byte(daemonYAML(dir, "a")), 0o644))
	r := startReloaderAt(t, path)
	for round, names := range [][]string{{"a", "b"}, {"a", "c"}, {"d"}} {
		must(t, os.RemoveAll(conf))
		eventually(t, 10*time.Second, "the missing file noticed", func() bool { return !r.Status().OK })
		must(t, os.MkdirAll(conf, 0o755))
		must(t, os.WriteFile(path, []byte(daemonYAML(dir, names...)), 0o644))
		want := strings.Join(names, ",")
		eventually(t, 10*time.Second, fmt.Sprintf("round %d: %s loaded", round, want), func() bool {
			return targetNames(r.Current()) == want && r.Status().OK
		})
		// An edit in place in the recreated directory.
		names = append(names, "z")
		must(t, os.WriteFile(path, []byte(daemonYAML(dir, names...)), 0o644))
		want = strings.Join(names, ",")
		eventually(t, 10*time.Second, fmt.Sprintf("round %d: edit %s loaded", round, want), func() bool { return targetNames(r.Current()) == want })
	}
}

// TestReloader_SymlinkSwaps: a configuration reached through symlinks
// that are swapped, as Kubernetes ConfigMaps do (compact.yaml ->
// ..data/compact.yaml, ..data -> a timestamped directory replaced by
// renaming a new symlink over it, the old directory then removed) and as
// configuration tools do with a symlink to a versioned file: every swap
// is applied, not only the first.
func TestReloader_SymlinkSwaps(t *testing.T) {
	layouts := []struct {
		name string
		// lay creates version n with content and points the config at it.
		lay func(t *testing.T, root string, n int, content string)
	}{
		{"ConfigMap", func(t *testing.T, root string, n int, content string) {
			ts := fmt.Sprintf("..2026_12_04_00_00_%02d.%d", n, n)
			must(t, os.MkdirAll(filepath.Join(root, ts), 0o755))
			must(t, os.WriteFile(filepath.Join(root, ts, "compact.yaml"), []byte(content), 0o644))
			old, _ := os.Readlink(filepath.Join(root, "..data"))
			must(t, os.Symlink(ts, filepath.Join(root, "..data_tmp")))
			must(t, os.Rename(filepath.Join(root, "..data_tmp"), filepath.Join(root, "..data")))
			if n == 0 {
				must(t, os.Symlink("..data/compact.yaml", filepath.Join(root, "compact.yaml")))
			}
			if old != "" {
				must(t, os.RemoveAll(filepath.Join(root, old)))
			}
		}},
		{"VersionedFileElsewhere", func(t *testing.T, root string, n int, content string) {
			store := filepath.Join(filepath.Dir(root), "store")
			must(t, os.MkdirAll(store, 0o755))
			file := filepath.Join(store, fmt.Sprintf("compact-%d.yaml", n))
			must(t, os.WriteFile(file, []byte(content), 0o644))
			tmp := filepath.Join(root, ".compact.yaml.new")
			must(t, os.Symlink(file, tmp))
			must(t, os.Rename(tmp, filepath.Join(root, "compact.yaml")))
		}},
	}
	for _, l := range layouts {
		t.Run(l.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "conf")
			must(t, os.MkdirAll(root, 0o755))
			l.lay(t, root, 0, daemonYAML(dir, "a"))
			r := startReloaderAt(t, filepath.Join(root, "compact.yaml"))
			names := []string{"a"}
			for n := 1; n <= 3; n++ {
				names = append(names, fmt.Sprintf("t%d", n))
				l.lay(t, root, n, daemonYAML(dir, names...))
				want := strings.Join(names, ",")
				eventually(t, 10*time.Second, fmt.Sprintf("swap %d: %s loaded", n, want), func() bool { return targetNames(r.Current()) == want })
			}
			if !r.Status().OK {
				t.Errorf("status after the swaps: %+v", r.Status())
			}
		})
	}
}
