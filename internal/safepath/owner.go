package safepath

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// ErrRefused means a store's path or ownership would let someone steer
// the agent's privileges at a file they do not own. Nothing was touched.
var ErrRefused = errors.New("not acting for another user")

// Owner is the user a target says its store belongs to (`owner:`).
type Owner struct {
	Name string
	UID  uint32
}

// LookupOwner finds the user named name (or a numeric uid) in the
// system's user database.
func LookupOwner(name string) (*Owner, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if _, perr := strconv.ParseUint(name, 10, 32); perr != nil || !errors.As(err, &unknown) {
			return nil, fmt.Errorf("owner %q: %w", name, err)
		}
		if u, err = user.LookupId(name); err != nil {
			return nil, fmt.Errorf("owner %q: %w", name, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("owner %q: uid %q: %w", name, u.Uid, err)
	}
	return &Owner{Name: u.Username, UID: uint32(uid)}, nil
}

// PolicyFor is the policy of a target whose owner: is owner ("" when
// unset); it fails when no such user exists.
func PolicyFor(owner string) (Policy, error) {
	if owner == "" {
		return Policy{}, nil
	}
	o, err := LookupOwner(owner)
	if err != nil {
		return Policy{}, err
	}
	return Policy{Owner: o}, nil
}

// Policy is what a resolution enforces beyond the symlink rule.
type Policy struct {
	// Owner, when set, is the user the store belongs to: the store, its
	// directory and every symlink on the way must belong to that user or
	// to root, and the directory's own mode and owner are not judged
	// further. When nil, the store must belong to its directory's owner
	// (or the directory to root), and the directory must not be writable
	// by group or others without the sticky bit.
	Owner *Owner
}

// checkLink applies the rule to one symlink: followed when root owns it
// or its owner owns what it reaches; with Owner set, it must also belong
// to that user or root.
func (p Policy) checkLink(link string, linkUID uint32, target string, targetUID uint32) error {
	if p.Owner != nil && linkUID != 0 && linkUID != p.Owner.UID {
		return fmt.Errorf("%w: symlink %s belongs to %s, not to the target's owner %s or root (it points to %s)",
			ErrRefused, link, userName(linkUID), p.Owner, target)
	}
	if linkUID == 0 || linkUID == targetUID {
		return nil
	}
	return fmt.Errorf("%w: symlink %s belongs to %s but points to %s, which belongs to %s; "+
		"a link is followed only when its owner also owns what it points to, or is root",
		ErrRefused, link, userName(linkUID), target, userName(targetUID))
}

// checkDir judges the store's directory.
func (d *Dir) checkDir() error {
	if o := d.pol.Owner; o != nil {
		if d.st.Uid != 0 && d.st.Uid != o.UID {
			return fmt.Errorf("%w: directory %s belongs to %s, not to the target's owner %s or root",
				ErrRefused, d.path, userName(d.st.Uid), o)
		}
		return nil
	}
	if d.st.Mode&0o022 != 0 && d.st.Mode&unix.S_ISVTX == 0 {
		return fmt.Errorf("%w: directory %s (owner %s, mode %04o) is writable by group or others without the sticky bit, "+
			"so anyone who may write there could replace the store with a link to someone else's file; "+
			"name the store's owner with `owner: <user>` on the target, or make the directory writable by its owner only",
			ErrRefused, d.path, userName(d.st.Uid), d.st.Mode&0o7777)
	}
	return nil
}

// CheckFile judges a store file (or segment) named name in d, as st
// (from fstat of the opened file) describes it.
func (d *Dir) CheckFile(name string, st *unix.Stat_t) error {
	path := d.Join(name)
	if o := d.pol.Owner; o != nil {
		if st.Uid != 0 && st.Uid != o.UID {
			return fmt.Errorf("%w: store %s belongs to %s, not to the target's owner %s or root",
				ErrRefused, path, userName(st.Uid), o)
		}
		return nil
	}
	if d.st.Uid != 0 && st.Uid != d.st.Uid {
		return fmt.Errorf("%w: store %s belongs to %s but its directory %s belongs to %s, "+
			"who could swap it for another file; name the store's owner with `owner: <user>` on the target if this is intended",
			ErrRefused, path, userName(st.Uid), d.path, userName(d.st.Uid))
	}
	return nil
}

func (o *Owner) String() string { return fmt.Sprintf("%s (uid %d)", o.Name, o.UID) }

// userName is "name (uid N)", or "uid N" for an id without a name.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username + " (uid " + id + ")"
	}
	return "uid " + id
}
