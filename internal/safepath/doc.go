// Package safepath resolves a store's path once, so that the agent's
// privileges serve only the store's owner, and then acts on the store
// relative to the directory it resolved.
//
// The agent runs with CAP_DAC_OVERRIDE, CAP_CHOWN and CAP_FOWNER: it can
// rewrite any file it can name. Whoever controls a directory on a store's
// path could otherwise aim it at another user's file, by a symlink or by
// renaming things while a run works (a confused deputy; logrotate met the
// same class in 2011). Resolve and ResolveDir therefore:
//
//   - walk the path one component at a time from "/", each component
//     opened with openat(O_PATH|O_NOFOLLOW) relative to its parent's
//     descriptor, so that no component is looked up twice;
//   - follow a symlink only when it belongs to root or its owner also owns
//     what it points to (the kernel's protected_symlinks rule, applied to
//     every link, not only in sticky world-writable directories);
//   - refuse a store directory that group or others may write without the
//     sticky bit, and a store whose owner is not its directory's (unless
//     root owns the directory), unless the target names the user it
//     belongs to (Policy.Owner, the config's `owner:`), in which case the
//     store, its directory and every link must belong to that user or to
//     root.
//
// The result holds the store's directory open (an O_PATH descriptor).
// Every later step — opening the store, the temp file, the second name,
// the swap, the directory fsync, the listing of a rotation family — goes
// through Dir's methods, which take single names relative to that
// descriptor and never follow a symlink in them, so a rename or a symlink
// put on the path after resolution cannot redirect a write. The real path
// Resolve reports is for messages, locks and recovery records only; it is
// never looked up again.
//
// Rejected: filepath.EvalSymlinks followed by path operations (every
// later lookup can meet a different file), openat2(RESOLVE_NO_SYMLINKS)
// (it refuses every link, including an admin's legitimate one, and
// cannot express an ownership rule), and relying on
// fs.protected_symlinks (it covers only sticky world-writable
// directories, and is a host setting).
package safepath
