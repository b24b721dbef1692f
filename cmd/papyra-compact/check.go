package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	"github.com/papyra-compact/papyra-compact/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration `FILE`")
	units := fs.Bool("units", false, "check the paths against the systemd units' sandbox even if the file is not the one they read")
	writeDropin := fs.Bool("write-dropin", false, "write the ReadWritePaths= drop-in both service units need for this file, then systemctl daemon-reload")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: check: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: check: unexpected argument %q", errUsage, fs.Arg(0))
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK, %d target(s)\n", cfg.File, len(cfg.Targets))
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %v\n", w)
	}
	for _, t := range cfg.Targets {
		where := t.Path
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(stdout, "  %-20s %-9s %s  retention: %s\n", t.Name, t.Kind, where, describeRetention(cfg.Policy(t)))
	}
	checkStores(stdout, cfg)
	if *writeDropin {
		return writeDropins(stdout, cfg, "/", systemdDaemonReload)
	}
	// A valid file can still name paths the systemd units may not write.
	// That matters for the file they read; a file kept elsewhere (a demo,
	// a draft) is checked against them only when asked.
	if *units || sameFile(*cfgPath, config.DefaultPath) {
		checkSandbox(stdout, cfg, "/")
		// Without the service user (the package is not installed)
		// there is no one to check for.
		if u, err := user.Lookup(serviceUser); err == nil {
			checkTextfileDir(stdout, cfg, "/", u)
		}
	} else {
		fmt.Fprintf(stdout, "(the systemd units read %s, not this file: add --units to check its paths against their sandbox)\n", config.DefaultPath)
	}
	return nil
}

// systemdDaemonReload makes systemd read the drop-ins just written (over
// D-Bus, as systemctl daemon-reload does); on a host where systemd is not
// running there is nothing to tell.
func systemdDaemonReload() error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := sddbus.NewWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	defer conn.Close()
	if err := conn.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}

// checkStores warns about every file store that does not exist. A run
// treats one as "nothing to do" (Papyra may not have created it yet), so
// a mistyped path would otherwise compact nothing, successfully, forever.
func checkStores(w io.Writer, cfg *config.Config) {
	for _, t := range cfg.Targets {
		if t.Path == "" {
			continue
		}
		if _, err := os.Lstat(t.Path); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(w, "warning: target %s: store %s does not exist: nothing is compacted until it does "+
				"(a mistyped path? status shows \"missing since\", and PapyraCompactStoreMissing fires after a day)\n", t.Name, t.Path)
		}
	}
}

// sameFile reports whether a and b name the same file, or the same path
// when neither exists.
func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA == nil && errB == nil {
		return os.SameFile(sa, sb)
	}
	absA, _ := filepath.Abs(a)
	absB, _ := filepath.Abs(b)
	return absA == absB
}

// loadConfig loads the configuration; every problem is listed, one per
// line, each naming file, line and field.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, configError(path, err)
	}
	return cfg, nil
}

// configError says why the configuration at path cannot be used: that it
// does not exist or cannot be read, or every problem in it.
func configError(path string, err error) error {
	switch {
	case errors.Is(err, config.ErrNoFile):
		return fmt.Errorf("%w: %s does not exist", errConfig, path)
	case errors.Is(err, config.ErrUnreadable):
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	return fmt.Errorf("%w: %s is not valid:\n  %s", errConfig, path,
		strings.ReplaceAll(err.Error(), "\n", "\n  "))
}

func describeRetention(r config.Retention) string {
	var parts []string
	if r.MaxAgeSeconds != nil {
		parts = append(parts, "max_age="+config.FormatSeconds(*r.MaxAgeSeconds))
	}
	if r.MaxRecords != nil {
		parts = append(parts, fmt.Sprintf("max_records=%d", *r.MaxRecords))
	}
	if r.MaxTotalBytes != nil {
		parts = append(parts, fmt.Sprintf("max_total_bytes=%d", *r.MaxTotalBytes))
	}
	if len(parts) == 0 {
		return "none (only corrupt and blank lines are removed)"
	}
	return strings.Join(parts, " ")
}
