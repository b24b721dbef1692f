package safepath

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks is how many symlinks one resolution follows, as the kernel's
// MAXSYMLINKS (40) for a path lookup.
const maxLinks = 40

// Store is a store file as resolved once: its real directory, held open,
// and its name in that directory. Close it when done.
type Store struct {
	// Dir is the store's real directory.
	Dir *Dir
	// Name is the store's file name in Dir, after following any symlink
	// at the end of the configured path.
	Name string
	// Path is Dir's real path joined with Name: the key of the store's
	// lock and recovery records, and the name messages use. It is never
	// looked up again.
	Path string
}

// Close releases the directory descriptor.
func (s *Store) Close() error { return s.Dir.Close() }

// Resolve resolves the store path (absolute) under pol and returns its
// directory, held open, and its name there. The store itself need not
// exist. A directory on the path that does not exist yields an error
// wrapping fs.ErrNotExist; a refusal wraps ErrRefused and names the link
// or file, its owner and what it points to.
func Resolve(path string, pol Policy) (*Store, error) {
	w, fin, err := walk(path, pol)
	if err != nil {
		return nil, err
	}
	defer w.close()
	defer fin.close()
	if fin.present && fin.st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil, fmt.Errorf("store %s is %w (%s)", fin.path, ErrNotRegular, modeOf(fin.st.Mode))
	}
	d, err := w.takeTop(pol)
	if err != nil {
		return nil, err
	}
	if err := d.checkDir(); err != nil {
		d.Close()
		return nil, err
	}
	return &Store{Dir: d, Name: fin.name, Path: d.Join(fin.name)}, nil
}

// ResolveDir resolves a directory path (absolute) under pol and returns
// it held open. For stores whose file names move (a rotating family, where
// Papyra renames the active file), only the directory is resolved; the
// caller looks at each name with Dir.Lstat and refuses links.
func ResolveDir(path string, pol Policy) (*Dir, error) {
	w, fin, err := walk(path, pol)
	if err != nil {
		return nil, err
	}
	defer w.close()
	defer fin.close()
	if !fin.present {
		return nil, fmt.Errorf("open directory %s: %w", fin.path, fs.ErrNotExist)
	}
	if fin.st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("open directory %s: %w", fin.path, unix.ENOTDIR)
	}
	d := &Dir{fd: fin.fd, path: fin.path, st: fin.st, pol: pol, links: w.followed}
	fin.fd = -1
	if err := d.checkDir(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// node is one directory of the walk, held by an O_PATH descriptor.
type node struct {
	fd   int
	name string
	st   unix.Stat_t
}

// final is what the last component of the path turned out to be.
type final struct {
	fd      int // O_PATH descriptor, -1 when absent (or taken)
	present bool
	name    string
	path    string
	st      unix.Stat_t // when present
}

func (f *final) close() {
	if f != nil && f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
	}
}

// pendingLink is a symlink whose text is being walked: once the walk has
// consumed the text (rest components are left), what it reached is the
// link's target and the ownership rule is applied.
type pendingLink struct {
	path string
	uid  uint32
	rest int
}

// walker resolves one path.
type walker struct {
	pol      Policy
	stack    []node // stack[0] is "/"
	followed []Link
	links    int
}

// Link is a symlink a resolution followed, for messages and the owner
// rule.
type Link struct {
	Path   string // where the link is
	UID    uint32 // its owner
	Target string // the real path it resolved to
}

func (w *walker) close() {
	for _, n := range w.stack {
		_ = unix.Close(n.fd)
	}
	w.stack = nil
}

func (w *walker) top() *node { return &w.stack[len(w.stack)-1] }

// path is the real path of the top of the stack.
func (w *walker) path() string {
	if len(w.stack) == 1 {
		return "/"
	}
	var b strings.Builder
	for _, n := range w.stack[1:] {
		b.WriteByte('/')
		b.WriteString(n.name)
	}
	return b.String()
}

func (w *walker) join(name string) string {
	p := w.path()
	if p == "/" {
		return "/" + name
	}
	return p + "/" + name
}

// toRoot empties the stack down to "/".
func (w *walker) toRoot() {
	for len(w.stack) > 1 {
		w.pop()
	}
}

func (w *walker) pop() {
	if len(w.stack) > 1 {
		_ = unix.Close(w.top().fd)
		w.stack = w.stack[:len(w.stack)-1]
	}
}

// takeTop hands the top directory's descriptor to a Dir.
func (w *walker) takeTop(pol Policy) (*Dir, error) {
	t := w.top()
	fd, err := unix.Openat(t.fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open directory %s: %w", w.path(), err)
	}
	return &Dir{fd: fd, path: w.path(), st: t.st, pol: pol, links: w.followed}, nil
}

// walk resolves path from "/". The stack it returns holds the directory
// of the last component; fin is that component (present or not).
func walk(path string, pol Policy) (*walker, *final, error) {
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("resolve %s: not an absolute path", path)
	}
	rootFd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /: %w", err)
	}
	w := &walker{pol: pol, stack: []node{{fd: rootFd}}}
	if err := unix.Fstat(rootFd, &w.stack[0].st); err != nil {
		w.close()
		return nil, nil, fmt.Errorf("stat /: %w", err)
	}
	fin, err := w.run(path)
	if err != nil {
		fin.close()
		w.close()
		return nil, nil, err
	}
	return w, fin, nil
}

func (w *walker) run(path string) (*final, error) {
	comps := strings.Split(path, "/")
	var pend []pendingLink
	var fin *final
	for {
		// Links whose text has been walked: apply the rule to what they
		// reached (the last component, or the directory on top).
		for len(pend) > 0 && pend[len(pend)-1].rest == len(comps) {
			p := pend[len(pend)-1]
			pend = pend[:len(pend)-1]
			target, uid := w.path(), w.top().st.Uid
			if fin != nil {
				target = fin.path
				if fin.present {
					uid = fin.st.Uid
				}
			}
			if err := w.pol.checkLink(p.path, p.uid, target, uid); err != nil {
				return fin, err
			}
			w.followed = append(w.followed, Link{Path: p.path, UID: p.uid, Target: target})
		}
		if fin != nil {
			return fin, nil
		}
		if len(comps) == 0 {
			// The path ended in "/", "." or "..": its last component is
			// the directory on top, which becomes fin.
			t := w.top()
			fin = &final{fd: t.fd, present: true, name: t.name, path: w.path(), st: t.st}
			if len(w.stack) == 1 {
				fd, err := unix.Openat(t.fd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return nil, fmt.Errorf("open /: %w", err)
				}
				fin.fd = fd
			} else {
				w.stack = w.stack[:len(w.stack)-1]
			}
			continue
		}
		c := comps[0]
		comps = comps[1:]
		last := len(comps) == 0
		switch c {
		case "", ".":
			continue
		case "..":
			w.pop()
			continue
		}
		fd, err := unix.Openat(w.top().fd, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) && last {
				fin = &final{fd: -1, name: c, path: w.join(c)}
				continue
			}
			return nil, fmt.Errorf("open %s: %w", w.join(c), err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("stat %s: %w", w.join(c), err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			text, err := readLink(fd)
			_ = unix.Close(fd)
			if err != nil {
				return nil, fmt.Errorf("read symlink %s: %w", w.join(c), err)
			}
			if w.links++; w.links > maxLinks {
				return nil, fmt.Errorf("resolve %s: %w", path, unix.ELOOP)
			}
			pend = append(pend, pendingLink{path: w.join(c), uid: st.Uid, rest: len(comps)})
			if strings.HasPrefix(text, "/") {
				w.toRoot()
			}
			comps = append(strings.Split(text, "/"), comps...)
		case unix.S_IFDIR:
			if last {
				// The caller decides what a directory at the end means;
				// links that point at it are judged with it first.
				fin = &final{fd: fd, present: true, name: c, path: w.join(c), st: st}
				continue
			}
			w.stack = append(w.stack, node{fd: fd, name: c, st: st})
		default:
			if !last {
				_ = unix.Close(fd)
				return nil, fmt.Errorf("open %s: %w", w.join(c), unix.ENOTDIR)
			}
			fin = &final{fd: fd, present: true, name: c, path: w.join(c), st: st}
		}
	}
}

// readLink reads the text of the symlink fd (opened O_PATH|O_NOFOLLOW):
// the same inode whose owner was checked, not whatever the name holds by
// now.
func readLink(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			if n == 0 {
				return "", unix.ENOENT
			}
			return string(buf[:n]), nil
		}
	}
}

// Open opens the store for reading. It never blocks (a FIFO put at the
// name is refused, not waited on), never follows a symlink at the name,
// and checks that what it opened is a regular file that passes the owner
// rule. A missing store is an error wrapping fs.ErrNotExist.
func (s *Store) Open() (*os.File, unix.Stat_t, error) {
	var st unix.Stat_t
	if err := checkName(s.Name); err != nil {
		return nil, st, s.Dir.pathErr("open", s.Name, err)
	}
	fd, err := unix.Openat(s.Dir.fd, s.Name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, st, fmt.Errorf("%w: %s became a symlink after it was resolved", ErrRefused, s.Path)
		}
		return nil, st, s.Dir.pathErr("open", s.Name, err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		_ = unix.Close(fd)
		return nil, st, s.Dir.pathErr("stat", s.Name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		_ = unix.Close(fd)
		return nil, st, fmt.Errorf("store %s is %w (%s)", s.Path, ErrNotRegular, modeOf(st.Mode))
	}
	if err := s.Dir.CheckFile(s.Name, &st); err != nil {
		_ = unix.Close(fd)
		return nil, st, err
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, st, s.Dir.pathErr("fcntl", s.Name, err)
	}
	return os.NewFile(uintptr(fd), s.Path), st, nil
}

// ErrNotRegular means the store's name holds something other than a
// regular file (a directory, a FIFO, a device, a socket).
var ErrNotRegular = errors.New("not a regular file")

// modeOf is a stat mode as fs.FileMode, for messages ("prw-r--r--").
func modeOf(m uint32) fs.FileMode {
	return modeType(m) | fs.FileMode(m&0o777)
}

// modeType is the fs.FileMode type bits of a stat mode.
func modeType(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}
