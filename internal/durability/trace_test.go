package durability_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// call is one completed system call of a trace.
type call struct {
	line int    // in the trace file, for messages
	name string // e.g. "renameat2"
	args string
	ok   bool // it returned without an error
}

var (
	traceLine = regexp.MustCompile(`^(\d+) +(.*)$`)
	resumed   = regexp.MustCompile(`^<\.\.\. (\w+) resumed>(.*)$`)
	callRE    = regexp.MustCompile(`^(\w+)\((.*)\)\s+= (.*)$`)
	fdPath    = regexp.MustCompile(`\d+<([^>]*)>`)
	quoted    = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)
)

// parseTrace reads `strace -f -y` output: one call per line, prefixed by
// the thread id; a call another thread interrupted is joined with its
// "resumed" line and counts where it completed.
func parseTrace(t *testing.T, path string) []call {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pending := map[string]string{}
	var out []call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		m := traceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, text := m[1], m[2]
		if strings.HasPrefix(text, "---") || strings.HasPrefix(text, "+++") {
			continue
		}
		if before, ok := strings.CutSuffix(text, " <unfinished ...>"); ok {
			pending[pid] = before
			continue
		}
		if r := resumed.FindStringSubmatch(text); r != nil {
			text = pending[pid] + r[2]
			delete(pending, pid)
		}
		c := callRE.FindStringSubmatch(text)
		if c == nil {
			if strings.HasPrefix(text, "exit_group(") {
				out = append(out, call{line: n, name: "exit_group", ok: true})
			}
			continue
		}
		out = append(out, call{line: n, name: c[1], args: c[2], ok: !strings.HasPrefix(c[3], "-1")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fds returns the paths of the descriptors among c's arguments (strace -y
// prints them as 3</path>), in order.
func (c call) fds() []string {
	var out []string
	for _, m := range fdPath.FindAllStringSubmatch(c.args, -1) {
		out = append(out, m[1])
	}
	return out
}

// strs returns c's string arguments, unquoted.
func (c call) strs() []string {
	var out []string
	for _, m := range quoted.FindAllStringSubmatch(c.args, -1) {
		s := m[1]
		if u, err := unquoteC(s); err == nil {
			s = u
		}
		out = append(out, s)
	}
	return out
}

func unquoteC(s string) (string, error) { return strconv.Unquote(`"` + s + `"`) }

// paths returns the file names c acts on, each joined to the directory
// descriptor it is relative to (strace -y prints it as 3</dir>): the
// file backends work relative to the store's directory descriptor
// (renameat2(3</s>, "a", 3</s>, "b", …)), so a bare name means nothing.
func (c call) paths() []string {
	args := splitArgs(c.args)
	var dirfds, names []int // positions of the arguments
	switch c.name {
	case "rename":
		names = []int{0, 1}
	case "unlink":
		names = []int{0}
	case "renameat", "renameat2", "linkat":
		dirfds, names = []int{0, 2}, []int{1, 3}
	case "unlinkat":
		dirfds, names = []int{0}, []int{1}
	}
	var out []string
	for i, pos := range names {
		if pos >= len(args) {
			return out
		}
		q := quoted.FindStringSubmatch(args[pos])
		if q == nil {
			return out
		}
		name := q[1]
		if u, err := unquoteC(name); err == nil {
			name = u
		}
		if !filepath.IsAbs(name) && i < len(dirfds) && dirfds[i] < len(args) {
			if m := fdPath.FindStringSubmatch(args[dirfds[i]]); m != nil {
				name = filepath.Join(m[1], name)
			}
		}
		out = append(out, name)
	}
	return out
}

// splitArgs splits a call's arguments at the commas outside quotes,
// brackets and fd paths.
func splitArgs(s string) []string {
	var out []string
	depth, start, inQuote := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case inQuote && ch == '\\':
			i++
		case ch == '"':
			inQuote = !inQuote
		case inQuote:
		case ch == '<' || ch == '[' || ch == '{' || ch == '(':
			depth++
		case ch == '>' || ch == ']' || ch == '}' || ch == ')':
			depth--
		case ch == ',' && depth == 0:
			out = append(out, strings.TrimSpace(s[start:i]))
			start = i + 1
		}
	}
	return append(out, strings.TrimSpace(s[start:]))
}

// sideName reports whether a file name is one the agent uses while it
// works (its side files, the temp files of an atomic write), not a name a
// reader looks for.
func sideName(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") }

// rules are what the checker is told about the run's directories.
type rules struct {
	storeDir string // where the store's files live
	stateDir string // where recovery records live (state files under it too)
}

// swap is a rename that put a file at a name readers use.
type swap struct {
	call
	from, to string
}

// durabilityErrors replays calls and returns every violation of:
//
//  1. a file renamed (or exchanged) into a name readers use has had all
//     its writes fsynced before the rename;
//  2. the directory of every such rename, and of every unlink of such a
//     name, is fsynced after it and before the run reports (its first
//     write to stdout afterwards) and before it exits;
//  3. the store's directory changes only when the latest recovery record
//     is durable: written, fsynced, renamed in, and its directory fsynced
//     (and before the first change, at least one record was).
//
// It also returns the swaps it saw, so that a test can check it saw the
// ones it expected.
func durabilityErrors(calls []call, r rules) (errs []string, swaps []swap) {
	dirty := map[string]int{} // path -> trace line of an unsynced write
	pendingDir := map[string][]call{}
	recordSeen := false
	bad := func(c call, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("trace line %d (%s): %s", c.line, c.name, fmt.Sprintf(format, args...)))
	}
	inState := func(p string) bool { return p == r.stateDir || strings.HasPrefix(p, r.stateDir+"/") }
	storeChange := func(c call) {
		if !recordSeen {
			bad(c, "the store changed before any recovery record was written")
		}
		for p, l := range dirty {
			if inState(p) {
				bad(c, "the store changed while %s had unsynced writes (trace line %d)", p, l)
			}
		}
		for d, cs := range pendingDir {
			if inState(d) && len(cs) > 0 {
				bad(c, "the store changed before the rename of %v in %s was made durable (no fsync of the directory since trace line %d)", cs[0].strs(), d, cs[0].line)
			}
		}
	}
	checkPending := func(c call, when string) {
		for d, cs := range pendingDir {
			for _, p := range cs {
				bad(c, "%s, but the directory %s was not fsynced after %s %v (trace line %d)", when, d, p.name, p.strs(), p.line)
			}
		}
	}
	for _, c := range calls {
		if !c.ok {
			continue
		}
		switch c.name {
		case "write", "pwrite64", "writev", "pwritev", "ftruncate":
			fd := c.fds()
			if len(fd) == 0 {
				continue
			}
			if strings.HasPrefix(c.args, "1<") {
				checkPending(c, "the run reported to stdout")
				continue
			}
			if !strings.Contains(c.args, ">(deleted)") && strings.HasPrefix(fd[0], "/") {
				dirty[fd[0]] = c.line
			}
		case "copy_file_range":
			if fd := c.fds(); len(fd) == 2 && !strings.Contains(c.args, ">(deleted)") {
				dirty[fd[1]] = c.line
			}
		case "fsync", "fdatasync":
			if fd := c.fds(); len(fd) == 1 {
				delete(dirty, fd[0])
				delete(pendingDir, strings.TrimSuffix(fd[0], "/"))
			}
		case "rename", "renameat", "renameat2":
			s := c.paths()
			if len(s) < 2 {
				bad(c, "cannot read the paths of %s", c.args)
				continue
			}
			from, to := s[0], s[1]
			exchange := strings.Contains(c.args, "RENAME_EXCHANGE")
			if sideName(to) && sideName(from) {
				// Between side names: nothing a reader sees.
				move(dirty, from, to, exchange)
				continue
			}
			// Our writes that arrive at a name readers use must be on disk.
			if l, ok := dirty[from]; ok && !sideName(to) {
				bad(c, "%s renamed to %s with writes not fsynced (trace line %d)", from, to, l)
			}
			if l, ok := dirty[to]; ok && exchange && !sideName(from) {
				bad(c, "%s exchanged to %s with writes not fsynced (trace line %d)", to, from, l)
			}
			if filepath.Dir(to) == r.storeDir || filepath.Dir(from) == r.storeDir {
				storeChange(c)
			}
			if inState(to) && !sideName(to) && !strings.Contains(strings.TrimPrefix(to, r.stateDir+"/"), "/") {
				recordSeen = true
			}
			pendingDir[filepath.Dir(to)] = append(pendingDir[filepath.Dir(to)], c)
			if filepath.Dir(from) != filepath.Dir(to) {
				pendingDir[filepath.Dir(from)] = append(pendingDir[filepath.Dir(from)], c)
			}
			move(dirty, from, to, exchange)
			swaps = append(swaps, swap{c, from, to})
		case "unlink", "unlinkat":
			s := c.paths()
			if len(s) < 1 || sideName(s[0]) {
				continue
			}
			if filepath.Dir(s[0]) == r.storeDir {
				storeChange(c)
			}
			if !inState(s[0]) {
				pendingDir[filepath.Dir(s[0])] = append(pendingDir[filepath.Dir(s[0])], c)
			}
		case "exit_group":
			checkPending(c, "the run exited")
		}
	}
	return errs, swaps
}

// move carries the unsynced-write marks of a rename (or an exchange).
func move(dirty map[string]int, from, to string, exchange bool) {
	lf, okf := dirty[from]
	lt, okt := dirty[to]
	delete(dirty, from)
	delete(dirty, to)
	if okf {
		dirty[to] = lf
	}
	if okt && exchange {
		dirty[from] = lt
	}
}
