//go:build failpoints

package failpoint

import (
	"os"
	"strings"
	"syscall"
	"time"
)

// Enabled reports whether this binary was built with fail points.
const Enabled = true

// Inject runs the action configured for step name in PAPYRA_FAILPOINT.
func Inject(name string) error {
	for _, spec := range strings.Split(os.Getenv("PAPYRA_FAILPOINT"), ",") {
		step, action, _ := strings.Cut(spec, ":")
		if step != name {
			continue
		}
		switch {
		case action == "" || action == "kill":
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL cannot be caught; never return
		case strings.HasPrefix(action, "sleep="):
			d, err := time.ParseDuration(strings.TrimPrefix(action, "sleep="))
			if err == nil {
				time.Sleep(d)
			}
		case action == "enospc":
			return syscall.ENOSPC
		}
	}
	return nil
}
