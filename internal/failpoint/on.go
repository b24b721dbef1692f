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
// With PAPYRA_FAILPOINT_LOG set, it first appends name and a newline to
// that file, so that a test can tell which steps a run reached (and so
// which configured actions fired), even when the action kills it.
func Inject(name string) error {
	if log := os.Getenv("PAPYRA_FAILPOINT_LOG"); log != "" {
		if f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			_, _ = f.WriteString(name + "\n")
			_ = f.Close()
		}
	}
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
		case strings.HasPrefix(action, "wait="):
			// Hold the step until the test creates the file: a pause of
			// exactly the length the test needs, however loaded the machine.
			for path := strings.TrimPrefix(action, "wait="); ; time.Sleep(time.Millisecond) {
				if _, err := os.Stat(path); err == nil {
					break
				}
			}
		case action == "enospc":
			return syscall.ENOSPC
		}
	}
	return nil
}
