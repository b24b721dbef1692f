package fsutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrXattr means a replacement file could not be given the original's
// extended attributes (POSIX ACLs, an SELinux label, user.* attributes):
// swapping it in would change who may read or append to the store, and
// Papyra's next append could fail with EACCES.
var ErrXattr = errors.New("cannot keep the store's ACLs and extended attributes")

// CopyXattrs gives dst exactly the extended attributes of src: every one
// src has (system.posix_acl_access, security.*, trusted.*, user.*) is set
// on dst, and any dst has that src lacks (an ACL inherited from the
// directory's default ACL) is removed. Call it after MatchOwner: chown
// clears some attributes (security.capability), and setting an access ACL
// sets the group permission bits from its mask, as the original's are.
// The caller fsyncs dst before swapping it in. An attribute that cannot
// be kept fails with ErrXattr naming it; a file system without xattr
// support on either side is fine when src has none.
func CopyXattrs(dst, src *os.File) error {
	want, err := xattrs(src)
	if err != nil {
		return fmt.Errorf("%w: read the attributes of %s: %w", ErrXattr, src.Name(), err)
	}
	have, err := xattrs(dst)
	if err != nil && len(want) > 0 {
		return fmt.Errorf("%w: read the attributes of %s: %w", ErrXattr, dst.Name(), err)
	}
	var failed []string
	var first error
	for _, name := range sortedKeys(have) {
		if _, ok := want[name]; ok {
			continue
		}
		if err := unix.Fremovexattr(int(dst.Fd()), name); err != nil && !errors.Is(err, unix.ENODATA) {
			failed, first = append(failed, "remove "+name), cmpErr(first, err)
		}
	}
	for _, name := range sortedKeys(want) {
		if v, ok := have[name]; ok && bytes.Equal(v, want[name]) {
			continue
		}
		if err := unix.Fsetxattr(int(dst.Fd()), name, want[name], 0); err != nil {
			failed, first = append(failed, name), cmpErr(first, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s of %s cannot be set on its replacement %s: %w (run as root, or remove the attribute from the store if it is not needed)",
			ErrXattr, strings.Join(failed, ", "), src.Name(), dst.Name(), first)
	}
	return nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// xattrs reads every extended attribute of f. A file system without
// xattr support has none.
func xattrs(f *os.File) (map[string][]byte, error) {
	fd := int(f.Fd())
	names := make([]byte, 1024)
	for {
		n, err := unix.Flistxattr(fd, names)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Flistxattr(fd, nil)
			if err != nil {
				return nil, err
			}
			names = make([]byte, sz+256)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		names = names[:n]
		break
	}
	out := map[string][]byte{}
	for _, name := range strings.Split(string(names), "\x00") {
		if name == "" {
			continue
		}
		v, err := getxattr(fd, name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

func getxattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Fgetxattr(fd, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+64)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
