package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/papyra-compact/papyra-compact/config"
)

func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration file")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: check: %v", errUsage, err)
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: OK, %d target(s)\n", cfg.File, len(cfg.Targets))
	for _, t := range cfg.Targets {
		where := t.Path
		if where == "" {
			where = "-"
		}
		fmt.Fprintf(stdout, "  %-20s %-9s %s  retention: %s\n", t.Name, t.Kind, where, describeRetention(cfg.Policy(t)))
	}
	// A valid file can still name paths the systemd units may not write.
	checkSandbox(stdout, cfg, "/")
	return nil
}

// loadConfig loads the configuration; every problem is listed, one per
// line, each naming file, line and field.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s is not valid:\n  %s", errConfig, path,
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	return cfg, nil
}

func describeRetention(r config.Retention) string {
	var parts []string
	if r.MaxAgeSeconds != nil {
		parts = append(parts, fmt.Sprintf("max_age_seconds=%g", *r.MaxAgeSeconds))
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
