package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/config"
)

// reloadPoll is how often `reload` looks for the daemon's verdict.
const reloadPoll = 50 * time.Millisecond

// cmdReload asks a running daemon to reload its configuration and waits
// for the verdict: papyra-compact-daemon.service's ExecReload=. systemd
// 252 has no Type=notify-reload, and `kill -HUP` returns before the
// daemon has even read the file, so `systemctl reload` reported success
// for a configuration the daemon then rejected. The daemon records every
// reload's outcome in the state directory (agent.json); this command
// notes the record, sends SIGHUP and waits for a newer one.
func cmdReload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("reload", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration `FILE` (for its state_dir)")
	stateDir := fs.String("state-dir", "", "the daemon's state directory (`DIR`) (default: the configuration's)")
	pid := fs.Int("pid", 0, "the daemon's `PID` (default: $MAINPID, which systemd sets for ExecReload=)")
	timeout := fs.Duration("timeout", 50*time.Second, "how long to wait for the daemon's verdict")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: reload: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: reload: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *pid == 0 {
		*pid, _ = strconv.Atoi(os.Getenv("MAINPID"))
	}
	if *pid <= 0 {
		return fmt.Errorf("%w: reload: no daemon PID (--pid PID, or $MAINPID as systemd sets it)", errUsage)
	}
	dir := *stateDir
	if dir == "" {
		dir = reloadStateDir(*cfgPath)
	}
	before, err := agent.LoadAgentState(dir)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	if err := syscall.Kill(*pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: signal the daemon (pid %d): %w", *pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	tick := time.NewTicker(reloadPoll)
	defer tick.Stop()
	for {
		st, err := agent.LoadAgentState(dir)
		if err == nil && st.Reload.Known && !st.Reload.At.Equal(before.Reload.At) {
			if st.Reload.Successful {
				fmt.Fprintf(stdout, "configuration reloaded at %s\n", st.Reload.At.UTC().Format(time.RFC3339))
				return nil
			}
			fmt.Fprintf(stderr, "papyra-compact: reload: the daemon rejected the new configuration and keeps the last good one:\n  %s\n",
				strings.ReplaceAll(st.Reload.Error, "\n", "\n  "))
			return errFailed
		}
		if errors.Is(syscall.Kill(*pid, 0), syscall.ESRCH) {
			return fmt.Errorf("reload: the daemon (pid %d) exited before it answered", *pid)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reload: no verdict from the daemon (pid %d) in %s/agent.json within %v; see journalctl -u papyra-compact-daemon",
				*pid, dir, *timeout)
		case <-tick.C:
		}
	}
}

// reloadStateDir is the state directory the daemon records its reloads
// in. The file being reloaded may well be broken, so when it does not
// load, its state_dir is read on its own, and failing that the default
// is used (the daemon cannot change state_dir without a restart anyway).
func reloadStateDir(path string) string {
	if cfg, err := config.Load(path); err == nil {
		return cfg.StateDir
	}
	var partial struct {
		StateDir string `yaml:"state_dir"`
	}
	if raw, err := os.ReadFile(path); err == nil && yaml.Unmarshal(raw, &partial) == nil && strings.HasPrefix(partial.StateDir, "/") {
		return partial.StateDir
	}
	return config.Default().StateDir
}
