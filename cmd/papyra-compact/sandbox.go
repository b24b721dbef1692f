package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/fsutil"
)

// shippedWritable is what the shipped units let the service write, as
// units/*.service spell it: ReadWritePaths= plus StateDirectory= and
// RuntimeDirectory=. It is used when no unit file is installed;
// TestShippedWritable_MatchesUnits keeps it in step with units/.
func shippedWritable() []string {
	return []string{"/var/lib/papyra", "/var/lib/prometheus/node-exporter", "/var/lib/papyra-compact", "/run/papyra-compact"}
}

// unitWritable returns the paths unit may write on the system under root:
// from the unit file systemd would load (/etc, then /run, then /usr/lib
// and /lib), or the shipped list when there is none, extended by every
// drop-in. An empty assignment (ReadWritePaths=) resets the list, as in
// systemd. The second result names where the list came from.
func unitWritable(root, unit string) ([]string, string) {
	return unitWritableExcept(root, unit, "")
}

// unitWritableExcept is unitWritable ignoring the drop-ins named skip:
// what the unit allows without the drop-in `check --write-dropin` owns.
func unitWritableExcept(root, unit, skip string) ([]string, string) {
	var paths []string
	source := "the unit as shipped"
	for _, dir := range []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
		f := filepath.Join(root, dir, unit)
		if p, err := parseWritable(f, nil); err == nil {
			paths, source = p, "/"+filepath.Join(dir, unit)
			break
		}
	}
	if paths == nil {
		paths = shippedWritable()
	}
	var dropins []string
	for _, dir := range []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system"} {
		m, _ := filepath.Glob(filepath.Join(root, dir, unit+".d", "*.conf"))
		dropins = append(dropins, m...)
	}
	// Drop-ins apply in file-name order, whatever their directory.
	sort.SliceStable(dropins, func(i, j int) bool { return filepath.Base(dropins[i]) < filepath.Base(dropins[j]) })
	for _, f := range dropins {
		if skip != "" && filepath.Base(f) == skip {
			continue
		}
		if p, err := parseWritable(f, paths); err == nil {
			paths = p
			source += " + drop-ins"
		}
	}
	return paths, source
}

// parseWritable adds to paths what the unit file at path makes writable.
func parseWritable(path string, paths []string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return scanWritable(f, paths)
}

func scanWritable(r io.Reader, paths []string) ([]string, error) {
	out := slices.Clone(paths)
	if out == nil {
		out = []string{}
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(key, "#") || strings.HasPrefix(key, ";") {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		var base string
		switch key {
		case "ReadWritePaths", "BindPaths":
		case "StateDirectory":
			base = "/var/lib"
		case "RuntimeDirectory":
			base = "/run"
		case "CacheDirectory":
			base = "/var/cache"
		case "LogsDirectory":
			base = "/var/log"
		default:
			continue
		}
		if value == "" {
			out = out[:0]
			continue
		}
		for _, v := range strings.Fields(value) {
			v = strings.TrimLeft(v, "-+")
			if key == "BindPaths" {
				// source[:destination[:options]]: the service sees the
				// destination.
				parts := strings.Split(v, ":")
				v = parts[0]
				if len(parts) > 1 && parts[1] != "" {
					v = parts[1]
				}
			}
			if base != "" {
				v = filepath.Join(base, v)
			}
			out = append(out, filepath.Clean(v))
		}
	}
	return out, sc.Err()
}

// needsWrite lists the directories cfg has the service write, each with
// the setting that asks for it: every file store's directory (the
// compacted copy is created there and renamed over the store), the
// agent's own directories and the metrics textfile's directory.
func needsWrite(cfg *config.Config) map[string][]string {
	need := map[string][]string{}
	add := func(dir, why string) {
		if dir == "" {
			return
		}
		dir = filepath.Clean(dir)
		// The sandbox applies to the real path: a symlinked directory
		// counts where it points.
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			dir = real
		}
		need[dir] = append(need[dir], why)
	}
	add(cfg.StateDir, "state_dir")
	add(cfg.LockDir, "lock_dir")
	add(cfg.QuarantineDir, "quarantine_dir")
	if cfg.Metrics.Textfile != "" {
		add(filepath.Dir(cfg.Metrics.Textfile), "metrics.textfile")
	}
	for _, t := range cfg.Targets {
		if t.Path != "" {
			add(filepath.Dir(t.Path), fmt.Sprintf("target %s (%s)", t.Name, t.Path))
		}
	}
	return need
}

func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || d == "/" || strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

// hidden reports what else than ProtectSystem=strict hides path from the
// service, so that ReadWritePaths= alone cannot help: ProtectHome=yes
// makes home directories inaccessible, and PrivateTmp=yes gives the
// service a /tmp of its own.
func hidden(path string) string {
	switch {
	case under(path, []string{"/home", "/root", "/run/user"}):
		return "home"
	case under(path, []string{"/tmp", "/var/tmp"}):
		return "tmp"
	}
	return ""
}

// dropinName is the drop-in `check` prints and `check --write-dropin`
// writes, for each service unit. It always lists every path the
// configuration needs beyond the unit's own (and other drop-ins'), so
// that writing it for a new store never drops an earlier one.
const dropinName = "papyra-paths.conf"

// serviceUnits are the services papyra-compact ships; their sandbox
// (ProtectSystem=strict) leaves writable only the paths they list.
var serviceUnits = []string{"papyra-compact.service", "papyra-compact-daemon.service"}

// sandboxGap is what one unit's sandbox lacks for a configuration.
type sandboxGap struct {
	unit, source string
	// missing, home and tmp are the needed directories the unit cannot
	// write now (drop-ins included): outside ReadWritePaths=, under a
	// home directory (ProtectHome=), under /tmp (PrivateTmp=).
	missing, home, tmp []string
	// dropin is the complete content of dropinName for the unit: every
	// needed directory outside the unit without that drop-in. Empty
	// when the unit needs none.
	dropin string
}

// sandboxGaps compares cfg's directories with each service unit under root.
func sandboxGaps(cfg *config.Config, root string) (gaps []sandboxGap, need map[string][]string) {
	need = needsWrite(cfg)
	dirs := make([]string, 0, len(need))
	for d := range need {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, unit := range serviceUnits {
		g := sandboxGap{unit: unit}
		var writable, base []string
		writable, g.source = unitWritable(root, unit)
		base, _ = unitWritableExcept(root, unit, dropinName)
		var rw, binds []string
		for _, d := range dirs {
			kind := hidden(d)
			if !under(d, base) {
				switch kind {
				case "home":
					binds = append(binds, d)
				case "":
					rw = append(rw, d)
				}
			}
			if under(d, writable) {
				continue
			}
			switch kind {
			case "home":
				g.home = append(g.home, d)
			case "tmp":
				g.tmp = append(g.tmp, d)
			default:
				g.missing = append(g.missing, d)
			}
		}
		g.dropin = dropinContent(cfg.File, rw, binds)
		gaps = append(gaps, g)
	}
	return gaps, need
}

// dropinContent is the drop-in that lets a unit write rw and binds.
func dropinContent(cfgFile string, rw, binds []string) string {
	if len(rw)+len(binds) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `papyra-compact check --write-dropin` for %s: every path\n", cfgFile)
	b.WriteString("# it names outside the unit's sandbox. Rewritten whole each time.\n[Service]\n")
	if len(rw) > 0 {
		// "-": a directory that does not exist (yet) is skipped
		// instead of failing the whole unit with 226/NAMESPACE.
		fmt.Fprintf(&b, "ReadWritePaths=-%s\n", strings.Join(rw, " -"))
	}
	if len(binds) > 0 {
		// ProtectHome=yes hides /home whatever ReadWritePaths= says;
		// tmpfs hides it too, except what is bound back.
		fmt.Fprintf(&b, "ProtectHome=tmpfs\nBindPaths=%s\n", strings.Join(binds, " "))
	}
	return b.String()
}

func dropinPath(root, unit string) string {
	return filepath.Join(root, "etc/systemd/system", unit+".d", dropinName)
}

// checkSandbox writes to w, for each shipped unit, the configured paths
// its sandbox does not let it write, and the complete drop-in that fixes
// it. It writes nothing when every path is writable.
func checkSandbox(w io.Writer, cfg *config.Config, root string) {
	gaps, need := sandboxGaps(cfg, root)
	for _, g := range gaps {
		if len(g.missing)+len(g.home)+len(g.tmp) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nwarning: %s (writable paths from %s) cannot write:\n", g.unit, g.source)
		for _, d := range slices.Concat(g.missing, g.home, g.tmp) {
			fmt.Fprintf(w, "  %-40s for %s\n", d, strings.Join(need[d], ", "))
		}
		for _, d := range g.tmp {
			fmt.Fprintf(w, "  %s: the service has its own /tmp and /var/tmp (PrivateTmp=yes); keep stores elsewhere\n", d)
		}
		if len(g.missing)+len(g.home) == 0 || g.dropin == "" {
			continue
		}
		fmt.Fprintf(w, "  Write this drop-in (complete: it replaces the file), or let `papyra-compact check --write-dropin` write it\n"+
			"  for both units; then `systemctl daemon-reload`, and restart papyra-compact-daemon if it runs:\n")
		fmt.Fprintf(w, "    # %s\n", dropinPath("/", g.unit))
		for _, l := range strings.Split(strings.TrimSuffix(g.dropin, "\n"), "\n") {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
}

// writeDropins writes (or, when nothing is needed any more, removes)
// dropinName for both service units under root, then calls reload
// (systemctl daemon-reload) when anything changed.
func writeDropins(w io.Writer, cfg *config.Config, root string, reload func() error) error {
	gaps, _ := sandboxGaps(cfg, root)
	changed := false
	for _, g := range gaps {
		path := dropinPath(root, g.unit)
		old, err := os.ReadFile(path)
		switch {
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("read %s: %w", path, err)
		case g.dropin == "" && err == nil:
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
			fmt.Fprintf(w, "removed %s: %s needs no path beyond its own\n", path, g.unit)
			changed = true
		case g.dropin == "":
			fmt.Fprintf(w, "%s needs no drop-in\n", g.unit)
		case string(old) == g.dropin:
			fmt.Fprintf(w, "%s is up to date\n", path)
		default:
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
			}
			if err := fsutil.WriteFileAtomic(path, []byte(g.dropin), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			fmt.Fprintf(w, "wrote %s:\n    %s\n", path, strings.ReplaceAll(strings.TrimSuffix(g.dropin, "\n"), "\n", "\n    "))
			changed = true
		}
	}
	if !changed || reload == nil {
		return nil
	}
	if err := reload(); err != nil {
		return fmt.Errorf("systemctl daemon-reload: %w", err)
	}
	fmt.Fprintln(w, "systemctl daemon-reload: done. A running papyra-compact-daemon applies the new sandbox only after `systemctl restart papyra-compact-daemon`; the timer's next pass applies it by itself.")
	return nil
}

// restartNeeded returns "restart needed: …" naming the existing
// directories cfg needs to write that are on a read-only mount here, or
// "" when there are none. Only under systemd ($INVOCATION_ID): there a
// read-only mount is the unit's sandbox (ProtectSystem=strict), fixed by
// a ReadWritePaths= drop-in and a restart.
func restartNeeded(cfg *config.Config) string {
	if os.Getenv("INVOCATION_ID") == "" {
		return ""
	}
	need := needsWrite(cfg)
	var ro []string
	for d := range need {
		var st unix.Statfs_t
		if unix.Statfs(d, &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
			ro = append(ro, d)
		}
	}
	if len(ro) == 0 {
		return ""
	}
	sort.Strings(ro)
	return fmt.Sprintf("restart needed: %s read-only in this service's sandbox (ReadWritePaths=); "+
		"run `papyra-compact check --write-dropin`, then `systemctl restart papyra-compact-daemon`",
		strings.Join(ro, ", "))
}

// serviceUser is the user the shipped units run as (User=).
const serviceUser = "papyra-compact"

// checkTextfileDir warns when the service user cannot write the metrics
// textfile's directory: every run would then log "cannot record the run"
// while nothing else looks wrong. The sandbox is checkSandbox's; this is
// the directory itself: that it exists, and that its owner, group and
// mode, or the units' CAP_DAC_OVERRIDE, let the service user write it.
// u is the service user.
func checkTextfileDir(w io.Writer, cfg *config.Config, root string, u *user.User) {
	if cfg.Metrics.Textfile == "" {
		return
	}
	dir := filepath.Dir(cfg.Metrics.Textfile)
	fi, err := os.Stat(filepath.Join(root, dir))
	if err != nil {
		fmt.Fprintf(w, "warning: metrics.textfile directory %s: %v: runs cannot write the metrics "+
			"(`systemd-tmpfiles --create papyra-compact.conf` creates Debian's default; create another with `install -d %s`)\n",
			dir, errors.Unwrap(err), dir)
		return
	}
	if !fi.IsDir() {
		fmt.Fprintf(w, "warning: metrics.textfile directory %s is not a directory (%s)\n", dir, fi.Mode())
		return
	}
	if ok, why := userCanWrite(u, fi); !ok {
		missing := []string{}
		for _, unit := range serviceUnits {
			if !unitHasCap(root, unit, "CAP_DAC_OVERRIDE") {
				missing = append(missing, unit)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(w, "warning: metrics.textfile directory %s (%s) is not writable by %s (%s, and %s lacks CAP_DAC_OVERRIDE): "+
				"runs cannot write the metrics; `chgrp %s %s && chmod g+w %s`\n",
				dir, fi.Mode(), u.Username, why, strings.Join(missing, ", "), u.Username, dir, dir)
		}
	}
}

// userCanWrite reports whether u may write a directory with fi's owner,
// group and mode, by the permission bits alone, and if not, why.
func userCanWrite(u *user.User, fi os.FileInfo) (bool, string) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true, ""
	}
	owner, group := fmt.Sprint(st.Uid), fmt.Sprint(st.Gid)
	mode := fi.Mode().Perm()
	switch {
	case u.Uid == owner:
		return mode&0o300 == 0o300, "owner without write and search"
	case mode&0o003 == 0o003:
		return true, ""
	}
	gids, _ := u.GroupIds()
	if slices.Contains(gids, group) || u.Gid == group {
		return mode&0o030 == 0o030, "group without write and search"
	}
	return false, fmt.Sprintf("owned by uid %s, gid %s", owner, group)
}

// unitHasCap reports whether the unit under root (file and drop-ins)
// grants capability in AmbientCapabilities=.
func unitHasCap(root, unit, capability string) bool {
	var files []string
	for _, dir := range []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"} {
		if f := filepath.Join(root, dir, unit); fileExists(f) {
			files = append(files, f)
			break
		}
	}
	if len(files) == 0 {
		return true // not installed: the shipped units grant it
	}
	var dropins []string
	for _, dir := range []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system"} {
		m, _ := filepath.Glob(filepath.Join(root, dir, unit+".d", "*.conf"))
		dropins = append(dropins, m...)
	}
	sort.SliceStable(dropins, func(i, j int) bool { return filepath.Base(dropins[i]) < filepath.Base(dropins[j]) })
	has := false
	for _, f := range append(files, dropins...) {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			key, value, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok || strings.TrimSpace(key) != "AmbientCapabilities" {
				continue
			}
			value = strings.TrimSpace(value)
			switch {
			case value == "":
				has = false
			case strings.HasPrefix(value, "~"):
				has = !slices.Contains(strings.Fields(value[1:]), capability)
			case slices.Contains(strings.Fields(value), capability):
				has = true
			}
		}
	}
	return has
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
