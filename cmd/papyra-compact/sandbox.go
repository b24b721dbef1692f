package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/papyra-compact/papyra-compact/config"
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

// checkSandbox writes to w, for each shipped unit, the configured paths
// its sandbox does not let it write, and the drop-in that fixes it. It
// writes nothing when every path is writable.
func checkSandbox(w io.Writer, cfg *config.Config, root string) {
	need := needsWrite(cfg)
	dirs := make([]string, 0, len(need))
	for d := range need {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	// The services papyra-compact ships: their sandbox
	// (ProtectSystem=strict) leaves writable only the paths they list.
	for _, unit := range []string{"papyra-compact.service", "papyra-compact-daemon.service"} {
		writable, source := unitWritable(root, unit)
		var missing, home, tmp []string
		for _, d := range dirs {
			if under(d, writable) {
				continue
			}
			switch hidden(d) {
			case "home":
				home = append(home, d)
			case "tmp":
				tmp = append(tmp, d)
			default:
				missing = append(missing, d)
			}
		}
		if len(missing)+len(home)+len(tmp) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nwarning: %s (writable paths from %s) cannot write:\n", unit, source)
		for _, d := range slices.Concat(missing, home, tmp) {
			fmt.Fprintf(w, "  %-40s for %s\n", d, strings.Join(need[d], ", "))
		}
		for _, d := range tmp {
			fmt.Fprintf(w, "  %s: the service has its own /tmp and /var/tmp (PrivateTmp=yes); keep stores elsewhere\n", d)
		}
		if len(missing)+len(home) == 0 {
			continue
		}
		fmt.Fprintf(w, "  Add this drop-in (`systemctl edit %s`), then `systemctl daemon-reload`:\n", unit)
		fmt.Fprintf(w, "    # /etc/systemd/system/%s.d/papyra-paths.conf\n    [Service]\n", unit)
		if len(missing) > 0 {
			// "-": a directory that does not exist (yet) is skipped
			// instead of failing the whole unit with 226/NAMESPACE.
			fmt.Fprintf(w, "    ReadWritePaths=-%s\n", strings.Join(missing, " -"))
		}
		if len(home) > 0 {
			// ProtectHome=yes hides /home whatever ReadWritePaths=
			// says; tmpfs hides it too, except what is bound back.
			fmt.Fprintf(w, "    ProtectHome=tmpfs\n    BindPaths=%s\n", strings.Join(home, " "))
		}
	}
}
