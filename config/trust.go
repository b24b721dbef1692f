package config

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The agent runs as root or with CAP_DAC_OVERRIDE, CAP_CHOWN and
// CAP_FOWNER: whatever its configuration names, it rewrites. Whoever can
// write the configuration (or replace it, through a directory on its path)
// can therefore aim those privileges anywhere, and whoever can write a
// password_file can point the agent at a server of their own with a
// password of their choosing. So when the process is privileged, a file is
// used only if nobody but root (and, for a password_file, the service
// user) can change what is read at its path:
//
//   - the file belongs to root (or the service user), is not writable by
//     others, and is writable by its group only when that group is root's
//     (gid 0);
//   - every directory a component of the path is looked up in, from "/"
//     down, including those a symlink on the way leads through, belongs to
//     root (or the service user), is not writable by others, and writable
//     by its group only when that group is gid 0 — except that a directory
//     with the sticky bit (like /tmp) may be writable by anyone, as long as
//     the entry looked up in it belongs to root (or the service user),
//     since only an entry's owner may rename or delete it there.
//
// A POSIX ACL entry that lets a named user other than those, or a named
// group other than root's, write (through the ACL's mask) counts as
// that user or group being able to write. Unprivileged, the process can do nothing its user cannot,
// so nothing is refused. A password_file readable by group or others is a
// warning (the Redis backend refuses it when it reads it).

// trust says whose files the process may act on.
type trust struct {
	// privileged is true for euid 0 or any effective capability.
	privileged bool
	// service are the uids, besides root, that may own a password file
	// and the directories above it: the process's own, and that of the
	// packaged service user.
	service []uint32
}

// serviceUser is the user the packaged units run the agent as.
const serviceUser = "papyra-compact"

// processTrust returns the running process's trust.
func processTrust() trust {
	t := trust{privileged: os.Geteuid() == 0 || effectiveCaps() != 0}
	if uid := os.Geteuid(); uid != 0 {
		t.service = append(t.service, uint32(uid))
	}
	if u, err := user.Lookup(serviceUser); err == nil {
		if uid, err := strconv.ParseUint(u.Uid, 10, 32); err == nil && uid != 0 {
			t.service = append(t.service, uint32(uid))
		}
	}
	return t
}

// effectiveCaps returns the process's effective capability set (CapEff in
// /proc/self/status); all set when it cannot be read, to err on the side
// of checking.
func effectiveCaps() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ^uint64(0)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return ^uint64(0)
			}
			return caps
		}
	}
	return ^uint64(0)
}

// untrusted returns why someone other than root or one of the owners
// allowed may change what is read at path, one reason per file or
// directory; nil when nobody can. It follows symlinks as the kernel
// would, judging each directory a name is looked up in by the entry
// found there.
func (t trust) untrusted(path string, allowService bool) []string {
	var reasons []string
	trusted := func(uid uint32) bool {
		if uid == 0 {
			return true
		}
		if allowService {
			for _, s := range t.service {
				if uid == s {
					return true
				}
			}
		}
		return false
	}
	judge := func(p string, st *syscall.Stat_t, sticky bool) {
		mode := fs.FileMode(st.Mode & 0o7777)
		var who []string
		if !trusted(st.Uid) {
			who = append(who, "its owner "+userName(st.Uid))
		}
		if st.Mode&0o020 != 0 && st.Gid != 0 && !sticky {
			who = append(who, "group "+groupName(st.Gid))
		}
		if st.Mode&0o002 != 0 && !sticky {
			who = append(who, "every user")
		}
		if !sticky {
			who = append(who, aclWriters(p, trusted)...)
		}
		if len(who) > 0 {
			reasons = append(reasons, fmt.Sprintf("%s (mode %04o, owner %s) can be changed by %s",
				displayPath(p), uint32(mode), userName(st.Uid), strings.Join(who, " and ")))
		}
	}
	// A sticky directory writable by others is judged by the entries
	// looked up in it: stickyWritable remembers which directories are.
	var root syscall.Stat_t
	if err := syscall.Stat("/", &root); err != nil {
		return []string{fmt.Sprintf("/: %v", err)}
	}
	judge("/", &root, root.Mode&0o1000 != 0)
	stickyWritable := map[string]bool{"/": root.Mode&0o1000 != 0 && root.Mode&0o022 != 0}
	last, _, err := walk(path, func(next, dir string, st *syscall.Stat_t) {
		if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
			// A link's owner matters only where others may write
			// and the sticky bit keeps them from replacing it.
			if stickyWritable[dir] && !trusted(st.Uid) {
				reasons = append(reasons, fmt.Sprintf("the symlink %s belongs to %s, in %s, which others may write (sticky): its owner may replace it",
					displayPath(next), userName(st.Uid), displayPath(dir)))
			}
			return
		}
		sticky := st.Mode&syscall.S_IFMT == syscall.S_IFDIR && st.Mode&0o1000 != 0
		judge(next, st, sticky)
		stickyWritable[next] = sticky && st.Mode&0o022 != 0
	})
	if errors.Is(err, errLinkLoop) {
		return append(reasons, fmt.Sprintf("%s: too many symlinks", displayPath(last)))
	}
	return reasons // a missing file the caller reports itself
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		return u.Username
	}
	return "uid " + strconv.FormatUint(uint64(uid), 10)
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		return g.Name
	}
	return "gid " + strconv.FormatUint(uint64(gid), 10)
}

// checkSecrets refuses, when the process is privileged, a password_file
// someone other than root or the service user can change, and warns of
// one that group or others can read.
func checkSecrets(c *Config, r *report, t trust) {
	for i, tg := range c.Targets {
		if tg.Kind != KindRedis || tg.PasswordFile == "" || !filepath.IsAbs(tg.PasswordFile) {
			continue
		}
		field := indexPath("targets", i) + ".password_file"
		line := r.line(field, tg.Line)
		if t.privileged {
			for _, why := range t.untrusted(tg.PasswordFile, true) {
				r.check(line, field, displayPath(tg.PasswordFile), newProblem(ErrUntrusted,
					"refused, as whoever can change it can point this privileged process at a server of theirs: %s; only root or the service user may be able to", why))
			}
		}
		fi, err := os.Stat(tg.PasswordFile)
		var p *problem
		switch {
		case errors.Is(err, fs.ErrNotExist):
			p = newProblem(ErrExposed, "does not exist; the Redis backend fails every run of this target until it does")
		case err == nil:
			if serr := SecretMode(fi.Mode()); serr != nil {
				p = newProblem(ErrExposed, "%s (the Redis backend refuses it)", serr)
			}
		}
		if p != nil {
			r.warnings = append(r.warnings, &FieldError{File: r.file, Line: line, Field: field,
				Value: displayPath(tg.PasswordFile), Err: p})
		}
	}
}

// SecretMode returns an error when mode lets group or others at a secret
// file (any of read, write or execute): the configuration is
// world-readable, the secret must not be. `check` warns with it and the
// Redis backend refuses the file with it, so that the two never disagree.
func SecretMode(mode fs.FileMode) error {
	if perm := mode.Perm(); perm&0o077 != 0 {
		return fmt.Errorf("is open to group or others (mode %04o): chmod 600 it and give it to the service user", uint32(perm))
	}
	return nil
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): a version, then
// entries of tag, permissions and id.
const (
	aclXattr   = "system.posix_acl_access"
	aclVersion = 2
	aclUser    = 0x02
	aclGroup   = 0x08
	aclMask    = 0x10
	aclWrite   = 0x2
)

// aclWriters names who, besides the owner, owning group and others, may
// write p through its access ACL: named users not trusted, and named
// groups other than root's, whose entry and the mask grant write.
func aclWriters(p string, trusted func(uint32) bool) []string {
	buf := make([]byte, 4096)
	n, err := unix.Lgetxattr(p, aclXattr, buf)
	if err != nil || n < 4 || binary.LittleEndian.Uint32(buf) != aclVersion {
		return nil // no ACL, or none this code knows
	}
	type entry struct {
		tag, perm uint16
		id        uint32
	}
	var entries []entry
	mask := uint16(0x7)
	for off := 4; off+8 <= n; off += 8 {
		e := entry{binary.LittleEndian.Uint16(buf[off:]), binary.LittleEndian.Uint16(buf[off+2:]), binary.LittleEndian.Uint32(buf[off+4:])}
		if e.tag == aclMask {
			mask = e.perm
		}
		entries = append(entries, e)
	}
	var who []string
	for _, e := range entries {
		if e.perm&mask&aclWrite == 0 {
			continue
		}
		switch {
		case e.tag == aclUser && !trusted(e.id):
			who = append(who, "user "+userName(e.id)+" (ACL)")
		case e.tag == aclGroup && e.id != 0:
			who = append(who, "group "+groupName(e.id)+" (ACL)")
		}
	}
	return who
}
