// Command papyra-compact applies retention physically to Papyra's
// persistence stores. See `papyra-compact --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/papyra-compact/papyra-compact/agent"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Errors main maps to exit codes; commands wrap them.
var (
	errUsage  = errors.New("usage error")
	errConfig = errors.New("configuration error")
	// errFailed is what a command that reports (status) returns when a
	// target's last real run failed.
	errFailed error = &outcomeError{agent.OutcomeFailed}
)

// outcomeError carries the agent's outcome of a pass (anything but a
// success) to run, the one place it becomes an exit status.
type outcomeError struct{ outcome agent.Outcome }

func (e *outcomeError) Error() string { return "pass outcome: " + e.outcome.String() }

// passResult is a command's error for a pass whose worst outcome is o:
// nil when that needs no non-zero exit status.
func passResult(o agent.Outcome) error {
	if exitStatus(o) == 0 {
		return nil
	}
	return &outcomeError{o}
}

// exitStatus maps an outcome to the exit status --help and the README
// document.
func exitStatus(o agent.Outcome) int {
	switch o {
	case agent.OutcomeFailed, agent.OutcomeRefused:
		return 1
	case agent.OutcomeLocked:
		return 75 // EX_TEMPFAIL: systemd treats it as success (SuccessExitStatus=75)
	case agent.OutcomeInterrupted:
		return 143 // 128+SIGTERM, as a shell reports a process SIGTERM ended
	}
	return 0
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches to a command and maps its error to the exit status. This
// switch is the only place exit codes are decided; --help documents them.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdout, stderr)
	var outcome *outcomeError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &outcome):
		return exitStatus(outcome.outcome)
	case errors.Is(err, errUsage), errors.Is(err, errConfig):
		fmt.Fprintf(stderr, "papyra-compact: %v\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "papyra-compact: %v\n", err)
		return 1
	}
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageShort)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, rest, stdout, stderr)
	case "daemon":
		return cmdDaemon(ctx, rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "status":
		return cmdStatus(ctx, rest, stdout, stderr)
	case "explain":
		return cmdExplain(ctx, rest, stdout, stderr)
	case "reload":
		return cmdReload(ctx, rest, stdout, stderr)
	case "manpage": // hidden: the packages generate papyra-compact(1) with it
		return cmdManpage(rest, stdout)
	case "version", "--version":
		return cmdVersion(rest, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, manual)
		return nil
	}
	fmt.Fprint(stderr, usageShort)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// newLogger returns the process logger at the given level: native
// journal entries with PAPYRA_* fields when stderr is the journal (under
// systemd), else text on stderr.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, level)
	}
	log := slog.New(agent.NewLogHandler(w, agent.LogOptions{Level: l}))
	quietRedis(log)
	return log, nil
}
