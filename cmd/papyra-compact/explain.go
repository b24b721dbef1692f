package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/papyra-compact/papyra-compact/agent"
	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/backends/all"
	"github.com/papyra-compact/papyra-compact/config"
	"github.com/papyra-compact/papyra-compact/internal/bytesize"
)

// cmdExplain is `papyra-compact explain TARGET [--json]`: read-only, for
// any user (see agent.Explain).
func cmdExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("explain", stderr)
	cfgPath := fs.String("config", config.DefaultPath, "configuration `FILE`")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	nowFlag := fs.String("now", "", "judge ages as of this `UNIX` time (seconds)")
	// TARGET may come before or after the options.
	var targets []string
	for {
		if err := fs.Parse(args); err != nil {
			return fmt.Errorf("%w: explain: %v", errUsage, err)
		}
		if fs.NArg() == 0 {
			break
		}
		targets = append(targets, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(targets) != 1 {
		return fmt.Errorf("%w: explain: want one TARGET, got %d (`papyra-compact check` lists them)", errUsage, len(targets))
	}
	now := time.Now()
	if *nowFlag != "" {
		var err error
		if now, err = parseNow(*nowFlag, now); err != nil {
			return err
		}
	}
	var e *agent.Explanation
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		// Unreadable by this user, or being edited: the state directory
		// still has the last run's figures.
		why := fmt.Sprintf("the configuration %s is unusable: %s", *cfgPath, strings.ReplaceAll(err.Error(), "\n", "; "))
		e = agent.ExplainLastRun(reloadStateDir(*cfgPath), targets[0], now, why)
	} else {
		e, err = agent.Explain(ctx, cfg, all.Backends(), targets[0], now)
		if err != nil {
			return fmt.Errorf("%w: explain: %v", errUsage, err)
		}
		e.Sandbox = sandboxMissing(cfg, targets[0], "/")
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("explain: %w", err)
		}
		return nil
	}
	return printExplanation(stdout, e)
}

// sandboxMissing lists, for target, the directories it needs written
// that a service unit's sandbox does not let it write, in words.
func sandboxMissing(cfg *config.Config, target string, root string) []string {
	out := []string{}
	gaps, need := sandboxGaps(cfg, root)
	mine := "target " + target + " ("
	units := map[string][]string{} // the message, by the units it applies to
	var order []string
	for _, g := range gaps {
		for _, list := range []struct {
			dirs []string
			why  string
		}{
			{g.missing, "not in ReadWritePaths="},
			{g.home, "under a home directory (ProtectHome=)"},
			{g.tmp, "under /tmp (the service has its own: PrivateTmp=)"},
		} {
			for _, d := range list.dirs {
				if slices.ContainsFunc(need[d], func(s string) bool { return strings.HasPrefix(s, mine) }) {
					msg := fmt.Sprintf("cannot write %s: %s (`papyra-compact check` says how to fix it)", d, list.why)
					if units[msg] == nil {
						order = append(order, msg)
					}
					units[msg] = append(units[msg], g.unit)
				}
			}
		}
	}
	for _, msg := range order {
		out = append(out, strings.Join(units[msg], " and ")+" "+msg)
	}
	return out
}

// ageNames are the text's names of agent.AgeRow.Age.
var ageNames = map[string]string{
	"1h": "under 1h", "1d": "1h to 1d", "7d": "1d to 7d", "30d": "7d to 30d", "90d": "30d to 90d",
	"older": "older", "future": "future-dated", "undated": "undated",
}

// printExplanation writes e for people: one screen, plain words.
func printExplanation(w io.Writer, e *agent.Explanation) error {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	store := e.Store
	if store == "" {
		store = "(store unknown)"
	}
	p("%s: %s store %s", e.Target, dash(e.Backend), store)
	if e.Policy.MaxClockSkew > 0 || e.Policy.MaxAgeSeconds != nil || e.Policy.MaxRecords != nil || e.Policy.MaxTotalBytes != nil {
		p("policy: %s", policyWords(e.Policy))
	}
	switch e.Source {
	case agent.SourceStore:
		p("read now, %s (nothing was changed)", e.Now.Format(time.RFC3339))
	case agent.SourceLastRun:
		p("CANNOT READ THE STORE: %s", e.Unreadable)
		p("Figures as of the last run at %s (from the state directory):", e.AsOf.Format(time.RFC3339))
	default:
		p("CANNOT READ THE STORE: %s", e.Unreadable)
		p("No run was recorded either: nothing to show. Run explain as root, or as the service user.")
		return nil
	}
	if e.Missing {
		p("\nThe store does not exist (yet): nothing to compact.")
		return nil
	}
	p("")
	verb := "holds"
	if e.Source == agent.SourceLastRun {
		verb = "held"
	}
	p("It %s %s records, %s.", verb, bytesize.Count(e.Records), bytesize.IEC(e.Bytes))
	if e.Ages != nil {
		p("  %-14s %11s %11s", "age", "records", "bytes")
		for _, r := range e.Ages {
			p("  %-14s %11s %11s", ageNames[r.Age], bytesize.Count(r.Records), bytesize.IEC(r.Bytes))
		}
	} else {
		p("  (ages unknown: this store's records were not dated)")
	}
	p("")
	r := e.Remove
	about := ""
	if r.Estimated {
		about = "about "
	}
	if e.Source == agent.SourceLastRun {
		p("That run removed %s records and freed %s; %s records (%s) stayed%s:", bytesize.Count(r.Records), bytesize.IEC(r.Freed), bytesize.Count(e.Keep.Records), bytesize.IEC(e.Keep.Bytes), oldestWords(e.Keep.Oldest))
	} else {
		p("Retention would remove %s%s records now (by age %s, by count %s, by size %s) and free %s.",
			about, bytesize.Count(r.Records), bytesize.Count(r.ByAge), bytesize.Count(r.ByCount), bytesize.Count(r.ByBytes), bytesize.IEC(r.Freed))
		p("%s records (%s) stay%s:", bytesize.Count(e.Keep.Records), bytesize.IEC(e.Keep.Bytes), oldestWords(e.Keep.Oldest))
	}
	var held int64
	for _, h := range e.Held {
		if h.Records > 0 && (h.Reason == "held_by_group" || h.Reason == "approximate_trim") {
			held += h.Records
		}
	}
	p("  %s inside the policy.", bytesize.Count(max(0, e.Keep.Records-held)))
	if f := e.Future; f.Records > 0 {
		newest := "?"
		if f.Newest != nil {
			newest = stampWords(float64(*f.Newest))
			if !math.IsInf(float64(*f.Newest), 1) {
				newest += ", " + f.Ahead + " ahead"
			}
		}
		p("  %s of them future-dated: stamped more than max_clock_skew (%s) ahead, the newest %s.",
			bytesize.Count(f.Records), secondsWords(e.Policy.MaxClockSkew), newest)
		p("    Kept, as Papyra keeps them; a writer's clock is wrong.")
	}
	for _, h := range e.Held {
		if e.Source == agent.SourceLastRun {
			p("  %s", agent.DescribeDebt(backends.Debt{Reason: backends.DebtReason(h.Reason), Detail: h.Detail, Records: h.Records, Bytes: h.Bytes,
				Estimated: h.Estimated, Oldest: stampValue(h.Oldest), HasOldest: h.Oldest != nil}))
			continue
		}
		p("  %s", heldWords(h))
	}
	switch {
	case e.Source == agent.SourceLastRun && e.Corrupt > 0:
		p("Also: that run moved %s to quarantine.", lines(e.Corrupt, "corrupt line"))
	case e.Source == agent.SourceStore && e.Corrupt+e.Blank > 0:
		p("Also: %s (a run moves them to quarantine), %s (a run drops them).", lines(e.Corrupt, "corrupt line"), lines(e.Blank, "blank line"))
	}
	if a := e.Active; a != nil {
		p("Active segment %s, %s: Papyra appends to it; a run rewrites it in place but never drops it.", a.Path, bytesize.IEC(a.Bytes))
	}
	for _, s := range e.Sandbox {
		p("SANDBOX: %s", s)
	}
	if e.Lock != "" && e.Lock != "taken" {
		p("Lock: %s", e.Lock)
	}
	for _, n := range e.Notes {
		p("Note: %s", n)
	}
	return nil
}

// heldWords says why one part of the store stays.
func heldWords(h agent.ExplainHeld) string {
	about := ""
	if h.Estimated {
		about = "about "
	}
	n := bytesize.Count(h.Records)
	if h.Records < 0 {
		n = "?"
	}
	since := ""
	if h.Oldest != nil {
		since = ", oldest since " + agent.FormatTimestamp(float64(*h.Oldest))
	}
	switch h.Reason {
	case "held_by_group":
		return fmt.Sprintf("%s%s held by consumer %s (not yet acknowledged or delivered)%s.", about, n, h.Detail, since)
	case "approximate_trim":
		return fmt.Sprintf("%s%s left by the approximate trim (XTRIM ~ removes whole stream nodes)%s.", about, n, since)
	case "below_min_reclaim":
		return fmt.Sprintf("%s%s that retention would remove stay below min_reclaim: %s%s.", about, n, h.Detail, since)
	case agent.HeldClockGuard:
		return "REFUSED by the clock guard, age retention would remove nothing: " + h.Detail +
			"\n    (the figures above apply the rest of the policy, without max_age)"
	case agent.HeldSafetyValve:
		return "A run would be REFUSED by the safety valve and remove nothing: " + h.Detail
	case "run_timeout":
		return fmt.Sprintf("%s%s left when the last run stopped at its run_timeout%s; the next run continues.", about, n, since)
	case "backlog":
		return fmt.Sprintf("%s%s of %s left with more unreadable entries to quarantine, or records to delete one by one, than one run handles%s; the next run continues.", about, n, h.Detail, since)
	}
	return fmt.Sprintf("%s%s stay (%s): %s%s.", about, n, h.Reason, h.Detail, since)
}

func policyWords(p agent.ExplainPolicy) string {
	var parts []string
	if p.MaxAgeSeconds != nil {
		parts = append(parts, "max_age "+secondsWords(*p.MaxAgeSeconds))
	}
	if p.MaxRecords != nil {
		parts = append(parts, "max_records "+bytesize.Count(*p.MaxRecords))
	}
	if p.MaxTotalBytes != nil {
		parts = append(parts, "max_total_bytes "+bytesize.IEC(*p.MaxTotalBytes))
	}
	if len(parts) == 0 {
		parts = append(parts, "no retention (keeps everything)")
	}
	if p.MaxRemoveFraction != nil {
		parts = append(parts, "max_remove_fraction "+strconv.FormatFloat(*p.MaxRemoveFraction*100, 'f', -1, 64)+"%")
	}
	parts = append(parts, "max_clock_skew "+secondsWords(p.MaxClockSkew))
	return strings.Join(parts, ", ")
}

// secondsWords is a number of seconds as a duration ("7d", "5m").
func secondsWords(s float64) string {
	if s >= 86400 && math.Mod(s, 86400) == 0 {
		return strconv.FormatFloat(s/86400, 'f', -1, 64) + "d"
	}
	return (time.Duration(s * float64(time.Second))).String()
}

func stampWords(ts float64) string {
	if math.IsInf(ts, 1) {
		return "Infinity (never ages)"
	}
	return agent.FormatStamp(ts)
}

func stampValue(s *agent.Stamp) float64 {
	if s == nil {
		return 0
	}
	return float64(*s)
}

func oldestWords(ts *agent.Stamp) string {
	if ts == nil {
		return ""
	}
	return ", the oldest stamped " + stampWords(float64(*ts))
}

// lines is "1 corrupt line", "2 corrupt lines".
func lines(n int64, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return bytesize.Count(n) + " " + what + "s"
}
