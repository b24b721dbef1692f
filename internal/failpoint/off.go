//go:build !failpoints

package failpoint

// Enabled reports whether this binary was built with fail points.
const Enabled = false

// Inject is a no-op in builds without the failpoints tag.
func Inject(string) error { return nil }
