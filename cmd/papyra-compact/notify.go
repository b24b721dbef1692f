package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
)

// runExtendTimeout is what each EXTEND_TIMEOUT_USEC= of `run` grants. The
// unit's RuntimeMaxSec= bounds a pass; a compaction that still makes
// progress past it is extended by this much at a time, so only a stuck
// one is killed, at most this long after it stopped moving.
const runExtendTimeout = 2 * time.Minute

// runNotify wires one pass of `run` to systemd (papyra-compact.service is
// Type=notify) and to the journal. It sends READY=1 at once (the caller
// has loaded the configuration), chains opts.Progress into STATUS= and
// EXTEND_TIMEOUT_USEC=, and, when the log goes to the journal, logs each
// target's result with its PAPYRA_* fields as it finishes (on a terminal
// the summary lines already say it). The returned function ends the pass
// with a last STATUS= and STOPPING=1. Outside systemd it all does nothing.
func runNotify(ctx context.Context, log *slog.Logger, a *agent.Agent, opts *agent.Options) (end func([]agent.Result)) {
	n := agent.NewNotifier(log, agent.NotifierOptions{})
	n.Ready()
	selected, _ := a.Select(opts.Targets)
	names := make([]string, len(selected))
	for i, t := range selected {
		names[i] = t.Name
	}
	rep := agent.NewProgressReporter(n, names, runExtendTimeout)
	if bar := opts.Progress; bar != nil {
		opts.Progress = func(target string, s backends.Step) {
			bar(target, s)
			rep.Progress(target, s)
		}
	} else {
		opts.Progress = rep.Progress
	}
	_, toJournal := log.Handler().(*agent.JournalHandler)
	record := opts.OnResult
	opts.OnResult = func(r agent.Result) {
		if toJournal {
			agent.LogResult(ctx, log, r)
		}
		if record != nil {
			record(r)
		}
	}
	return func(results []agent.Result) {
		failed := 0
		for _, r := range results {
			if r.Outcome == agent.OutcomeFailed || r.Outcome == agent.OutcomeRefused {
				failed++
			}
		}
		n.Status(fmt.Sprintf("done: %d targets, %d failed", len(results), failed))
		n.Close()
		n.Stopping()
	}
}
