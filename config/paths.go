package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// A store is rewritten in place and the agent writes files of its own (the
// textfile, state, locks, quarantine, scratch). checkPaths refuses a
// configuration where any of these could be the same file as another, or
// land where Papyra's rotating backend looks for its segments: with
// metrics.textfile set to a store's path, a run would replace the store
// with Prometheus text; with a store listed twice (a symlink alias, a
// "/./" form, or as jsonl and rotating), two backends would rewrite one
// file, one rotating records into store.1 where the other never reads.
//
// Paths are compared as the kernel would open them: every symlink on the
// part that exists is followed and "." and ".." are applied to what it
// resolved to (so a/link/.. is link's target's parent, not a), and two
// existing files are the same when they share device and inode (a
// hardlink). A path that does not exist yet is compared by its resolved
// form. The check reads the file system but never changes it; it catches
// what is there when the configuration is loaded (every check, run and
// reload), not a symlink planted later, which the backends refuse
// themselves (internal/safepath).

// pathEntry is one path of the configuration, resolved.
type pathEntry struct {
	field string // targets[0].path, metrics.textfile, state_dir
	line  int    // 0 when the file does not set it (a default)
	what  string // how messages name it: "the store of target orders"
	path  string // as configured
	real  string // resolved
	fi    os.FileInfo
	kind  entryKind
	// rotating marks a store whose rotation family (Papyra's
	// path.1 … path.N, and every name starting with the store's in its
	// directory, which Papyra's scan reports) is the store's too.
	rotating bool
}

type entryKind int

const (
	storeEntry    entryKind = iota // a jsonl or rotating store
	inputEntry                     // a file the agent reads: the config itself, a password or TLS file
	generatedFile                  // a file the agent writes: the textfile
	generatedDir                   // a directory the agent writes files into
)

// checkPaths records a problem for every pair of configured paths that
// could be the same file or where a generated file could collide with a
// store or its rotation family. Relative and empty paths, already
// reported, are skipped.
func checkPaths(c *Config, r *report) {
	var entries []*pathEntry
	add := func(field string, line int, what, path string, kind entryKind, rotating bool) {
		if path == "" || !filepath.IsAbs(path) {
			return
		}
		for p := field; p != ""; p = parentPath(p) {
			if r.failed[p] {
				return
			}
		}
		real := resolvePath(path)
		fi, err := os.Stat(real)
		if err != nil {
			fi = nil
		}
		entries = append(entries, &pathEntry{field: field, line: line, what: what, path: path,
			real: real, fi: fi, kind: kind, rotating: rotating})
	}
	if c.File != "" {
		if abs, err := filepath.Abs(c.File); err == nil {
			add("", 0, "the configuration file itself", abs, inputEntry, false)
		}
	}
	for i, t := range c.Targets {
		path := indexPath("targets", i)
		switch t.Kind {
		case KindJSONL, KindRotating:
			add(path+".path", r.line(path+".path", t.Line), fmt.Sprintf("the store of target %s", t.Name),
				t.Path, storeEntry, t.Kind == KindRotating)
		case KindRedis:
			add(path+".password_file", r.line(path+".password_file", t.Line),
				fmt.Sprintf("target %s's password file", t.Name), t.PasswordFile, inputEntry, false)
			if t.TLS != nil {
				for _, f := range []struct{ name, path string }{
					{"ca_file", t.TLS.CAFile}, {"cert_file", t.TLS.CertFile}, {"key_file", t.TLS.KeyFile},
				} {
					field := path + ".tls." + f.name
					add(field, r.line(field, t.Line), fmt.Sprintf("target %s's TLS %s", t.Name, f.name),
						f.path, inputEntry, false)
				}
			}
		}
	}
	line := func(field string) int { return r.line(field, 0) }
	add("metrics.textfile", line("metrics.textfile"), "the metrics textfile", c.Metrics.Textfile, generatedFile, false)
	add("state_dir", line("state_dir"), "the state directory", c.StateDir, generatedDir, false)
	if c.StateDir != "" {
		// The backends' scratch files; the state files themselves are
		// named in stateFiles below.
		add("state_dir", line("state_dir"), "the state directory's scratch directory",
			filepath.Join(c.StateDir, "scratch"), generatedDir, false)
	}
	add("lock_dir", line("lock_dir"), "the lock directory", c.LockDir, generatedDir, false)
	add("quarantine_dir", line("quarantine_dir"), "the quarantine directory", c.QuarantineDir, generatedDir, false)

	families := map[*pathEntry][]familyMember{}
	reported := map[[2]string]bool{}
	for j, b := range entries {
		for _, a := range entries[:j] {
			pair := [2]string{a.field, b.field}
			if a.field == b.field || reported[pair] {
				continue // state_dir and its scratch directory
			}
			blamed, msg := collision(a, b, families)
			if blamed == nil {
				continue
			}
			reported[pair] = true
			r.check(blamed.line, blamed.field, displayPath(blamed.path), newProblem(ErrConflict, "%s", msg))
		}
	}
	checkTextfile(c, r)
}

// collision says how a and b could be one file: the entry to report the
// problem at and the message, which names the other entry; nil if they
// cannot. The problem goes to what the agent generates, or to the later
// of two stores, unless that has no line (a default): then to the other.
func collision(a, b *pathEntry, families map[*pathEntry][]familyMember) (*pathEntry, string) {
	// Two files the agent only reads may well be one; the agent's own
	// directories may nest and share (locks and state side by side).
	if a.kind == inputEntry && b.kind == inputEntry || a.kind == generatedDir && b.kind == generatedDir {
		return nil, ""
	}
	blame := func(x, y *pathEntry) *pathEntry {
		switch {
		case x.line == 0 && y.line != 0:
			return y
		case y.line == 0 && x.line != 0:
			return x
		case x.kind >= generatedFile && y.kind < generatedFile:
			return x
		case y.kind >= generatedFile && x.kind < generatedFile:
			return y
		case x.line >= y.line:
			return x
		}
		return y
	}(a, b)
	other := a
	if blame == a {
		other = b
	}
	if same(a, b) {
		return blame, fmt.Sprintf("is the same file as %s (%s)", other.what, ref(other))
	}
	for _, p := range [][2]*pathEntry{{a, b}, {b, a}} {
		x, y := p[0], p[1]
		// A directory the agent writes into must not hold a store, nor
		// be inside one (possible only while the store does not exist).
		if x.kind == generatedDir && y.kind == storeEntry && (within(y.real, x.real) || within(x.real, y.real)) {
			if blame == x {
				return blame, fmt.Sprintf("holds %s (%s), and the agent creates files of its own in it", y.what, ref(other))
			}
			return blame, fmt.Sprintf("is inside %s (%s), where the agent creates files of its own", x.what, ref(other))
		}
		if !x.rotating {
			continue
		}
		// y named like one of x's rotated segments is read, renamed and
		// deleted by Papyra's rotation as one of x's records; a
		// generated file or directory named like x at all is reported
		// by Papyra's scan as an orphan of x (and fails its startup
		// check).
		if inFamily(y, x, families, y.kind == generatedFile || y.kind == generatedDir) {
			base := filepath.Base(x.real)
			why := fmt.Sprintf("Papyra's rotating backend rotates into every %s.N and counts every %s* in %s as its own",
				base, base, displayPath(filepath.Dir(x.real)))
			if blame == y {
				return blame, fmt.Sprintf("is in the rotation family of %s (%s): %s", x.what, ref(other), why)
			}
			return blame, fmt.Sprintf("has %s (%s) in its rotation family: %s", y.what, ref(other), why)
		}
	}
	return nil, ""
}

// ref names where an entry is configured, for a message about another.
func ref(e *pathEntry) string {
	switch {
	case e.field == "":
		return displayPath(e.path)
	case e.line > 0:
		return fmt.Sprintf("%s at line %d: %s", e.field, e.line, displayPath(e.path))
	default:
		return fmt.Sprintf("%s, by default %s", e.field, displayPath(e.path))
	}
}

// displayPath shows a path whole (display would shorten it), quoted when
// it has blanks, quotes or unprintable characters.
func displayPath(p string) string {
	if p == "" || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r) || strings.ContainsRune(`"'()`, r)
	}) {
		return strconv.Quote(p)
	}
	return p
}

// same reports whether a and b name one file: the same inode when both
// exist, else the same resolved path.
func same(a, b *pathEntry) bool {
	if a.fi != nil && b.fi != nil {
		return os.SameFile(a.fi, b.fi)
	}
	return a.real == b.real
}

// familyMember is a file found in a rotating store's directory under a
// name of its family.
type familyMember struct {
	name string
	fi   os.FileInfo
}

// inFamily reports whether y is in the rotation family of the rotating
// store x: in x's directory and named x.N (or, with anyPrefix, any name
// starting with x's), or, when y exists, a hardlink of a file that is.
func inFamily(y, x *pathEntry, families map[*pathEntry][]familyMember, anyPrefix bool) bool {
	dir, base := filepath.Dir(x.real), filepath.Base(x.real)
	if filepath.Dir(y.real) == dir && familyName(filepath.Base(y.real), base, anyPrefix) {
		return true
	}
	if y.fi == nil {
		return false
	}
	members, ok := families[x]
	if !ok {
		// What is in the directory now; a name that does not exist
		// yet was judged by name above.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != base && familyName(e.Name(), base, true) {
				if fi, err := os.Stat(filepath.Join(dir, e.Name())); err == nil {
					members = append(members, familyMember{e.Name(), fi})
				}
			}
		}
		families[x] = members
	}
	for _, m := range members {
		if familyName(m.name, base, anyPrefix) && os.SameFile(m.fi, y.fi) {
			return true
		}
	}
	return false
}

// familyName reports whether name is one of base's rotated segments
// (base.1, base.2, …), or with anyPrefix any other name Papyra's scan
// counts as base's (it globs base*).
func familyName(name, base string, anyPrefix bool) bool {
	if name == base || !strings.HasPrefix(name, base) {
		return false
	}
	if anyPrefix {
		return true
	}
	n, ok := strings.CutPrefix(name, base+".")
	return ok && n != "" && strings.Trim(n, "0123456789") == "" && strings.TrimLeft(n, "0") != ""
}

// within reports whether path is dir or inside it; both are resolved.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// checkTextfile refuses a textfile on one of the state directory's own
// files, which the state writer would replace (or the textfile writer
// replace them).
func checkTextfile(c *Config, r *report) {
	if c.Metrics.Textfile == "" || c.StateDir == "" || !filepath.IsAbs(c.Metrics.Textfile) || !filepath.IsAbs(c.StateDir) {
		return
	}
	tf, sd := resolvePath(c.Metrics.Textfile), resolvePath(c.StateDir)
	if tf == filepath.Join(sd, "agent.json") || tf == filepath.Join(sd, "state.lock") || within(tf, filepath.Join(sd, "targets")) {
		r.check(r.line("metrics.textfile", 0), "metrics.textfile", displayPath(c.Metrics.Textfile), newProblem(ErrConflict,
			"is one of the state directory's own files (state_dir is %s)", displayPath(c.StateDir)))
	}
}

// maxLinks bounds the symlinks one resolution follows, as the kernel's
// ELOOP limit does.
const maxLinks = 40

// errLinkLoop is walk's answer to more than maxLinks symlinks.
var errLinkLoop = errors.New("too many symlinks")

// walk follows p as the kernel resolves it: one component at a time from
// "/", symlinks on the existing part followed (at most maxLinks), "." and
// ".." applied to the directory reached so far, not to the text. visit,
// when set, sees every entry reached (a symlink before it is followed)
// and the directory it was looked up in. walk returns the path reached;
// at the first component that cannot be looked up (or a link that cannot
// be followed) it stops and returns that component's path, the rest as
// written, and the error.
func walk(p string, visit func(path, dir string, st *syscall.Stat_t)) (done string, rest []string, err error) {
	done = "/"
	rest = strings.Split(p, "/")
	for links := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = filepath.Dir(done)
			continue
		}
		next := filepath.Join(done, c)
		var st syscall.Stat_t
		if err := syscall.Lstat(next, &st); err != nil {
			return next, rest, err
		}
		if visit != nil {
			visit(next, done, &st)
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
			done = next
			continue
		}
		target, err := os.Readlink(next)
		if links++; err != nil || links > maxLinks {
			return next, rest, errLinkLoop
		}
		if filepath.IsAbs(target) {
			done = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return done, nil, nil
}

// resolvePath returns the path p names once the symlinks on the part of
// it that exists are followed and "." and ".." are applied as the kernel
// applies them (walk). The part from the first missing component on is
// appended as written, with "." and ".." applied to the text (the kernel
// would fail there anyway).
func resolvePath(p string) string {
	done, rest, err := walk(p, nil)
	if err != nil {
		return filepath.Join(append([]string{done}, rest...)...)
	}
	return done
}
