package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
)

// cmdDaemon compacts every target on its interval until SIGTERM or
// SIGINT, reloading the configuration on SIGHUP and when the file changes.
// It is papyra-compact-daemon.service's ExecStart (Type=notify). The
// daemon itself is agent.RunDaemon; this parses its flags.
func cmdDaemon(ctx context.Context, args []string, _, stderr io.Writer) error {
	flags := newFlagSet("daemon", stderr)
	cfgPath := flags.String("config", config.DefaultPath, "configuration `FILE`")
	logLevel := flags.String("log-level", "info", "`LEVEL`: debug, info, warn or error")
	stopGrace := flags.Duration("stop-grace", 30*time.Second,
		"on SIGTERM, how long compactions in flight may take to finish before they are abandoned")
	concurrency := flags.Int("concurrency", 1, "how many targets (`N`) may compact at once")
	if err := flags.Parse(args); err != nil {
		return fmt.Errorf("%w: daemon: %v", errUsage, err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("%w: daemon: unexpected argument %q", errUsage, flags.Arg(0))
	}
	if *stopGrace < 0 || *concurrency < 1 {
		return fmt.Errorf("%w: daemon: --stop-grace must be >= 0 and --concurrency >= 1", errUsage)
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		return err
	}
	notifier := agent.NewNotifier(log, agent.NotifierOptions{})
	defer notifier.Close()
	err = agent.RunDaemon(ctx, agent.DaemonOptions{
		ConfigPath:  *cfgPath,
		Registry:    all.Backends(),
		Logger:      log,
		Notifier:    notifier,
		Concurrency: *concurrency,
		StopGrace:   *stopGrace,
		Version:     version,
		// A target added by a reload whose directory this process's
		// sandbox keeps read-only needs a restart.
		CheckConfig: restartNeeded,
	})
	if le := (*agent.ConfigLoadError)(nil); errors.As(err, &le) {
		return configError(*cfgPath, le.Err)
	}
	return err
}
