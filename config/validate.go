package config

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// kinds lists the valid Target.Kind values, in the order messages show.
var kinds = []string{KindJSONL, KindRotating, KindRedis, KindMemory}

// namePattern is what a target name must match: it becomes a Prometheus
// label value, a quarantine subdirectory and a lock file name, so no
// slashes, no blanks, and no leading dot (which would make "." and "..").
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// kindField describes a Target field that only some kinds use. Adding a
// kind's settings means adding rows here, not branches in validateTarget.
type kindField struct {
	name string
	// kinds are the kinds the field belongs to; on any other kind it is
	// an error to set it.
	kinds []string
	// required makes the field mandatory for every kind in kinds.
	required bool
	isSet    func(*Target) bool
	// check validates a set value; it returns the value as messages
	// show it and the problem, or a nil problem.
	check func(*Target) (string, *problem)
}

var kindFields = []kindField{
	{
		name:     "path",
		kinds:    []string{KindJSONL, KindRotating},
		required: true,
		isSet:    func(t *Target) bool { return t.Path != "" },
		check: func(t *Target) (string, *problem) {
			return display(t.Path), absolute(t.Path)
		},
	},
	{
		name:     "max_bytes",
		kinds:    []string{KindRotating},
		required: true,
		isSet:    func(t *Target) bool { return t.MaxBytes != nil },
		check:    func(t *Target) (string, *problem) { return positive(*t.MaxBytes) },
	},
	{
		name:     "max_files",
		kinds:    []string{KindRotating},
		required: true,
		isSet:    func(t *Target) bool { return t.MaxFiles != nil },
		check:    func(t *Target) (string, *problem) { return positive(*t.MaxFiles) },
	},
}

func absolute(path string) *problem {
	if filepath.IsAbs(path) {
		return nil
	}
	// The agent runs with "/" as its working directory, so a relative
	// path would not mean what it meant in the admin's shell.
	return newProblem(ErrRelativePath, "must be an absolute path")
}

func positive(n int64) (string, *problem) {
	if n > 0 {
		return "", nil
	}
	return strconv.FormatInt(n, 10), newProblem(ErrInvalidValue, "must be > 0")
}

// validate records every problem of c in r. It runs even when decoding
// failed, so that one Load reports everything; r suppresses what would
// only repeat a decoding error.
func validate(c *Config, r *report) {
	for _, dir := range []struct {
		field, path string
	}{
		{"state_dir", c.StateDir},
		{"lock_dir", c.LockDir},
		{"quarantine_dir", c.QuarantineDir},
	} {
		line := r.line(dir.field, 0)
		if dir.path == "" {
			r.check(line, dir.field, "", newProblem(ErrRequired, "required"))
		} else if p := absolute(dir.path); p != nil {
			r.check(line, dir.field, display(dir.path), p)
		}
	}
	if c.Metrics.Textfile != "" {
		if p := absolute(c.Metrics.Textfile); p != nil {
			r.check(r.line("metrics.textfile", 0), "metrics.textfile", display(c.Metrics.Textfile), p)
		}
	}
	validateRetention(r, c.Defaults.Retention, "defaults.retention")
	validateInterval(r, c.Defaults.Interval, "defaults.interval", 0)

	// firstName maps each target name to the line of its first use.
	firstName := make(map[string]int, len(c.Targets))
	for i := range c.Targets {
		validateTarget(r, &c.Targets[i], indexPath("targets", i), firstName)
	}
}

func validateTarget(r *report, t *Target, path string, firstName map[string]int) {
	// Missing fields have no key to point at; point at the entry.
	at := r.line(path, t.Line)

	nameField := path + ".name"
	nameLine := r.line(nameField, at)
	switch first, dup := firstName[t.Name]; {
	case t.Name == "":
		r.check(at, nameField, "", newProblem(ErrRequired, "required"))
	case !namePattern.MatchString(t.Name):
		r.check(nameLine, nameField, display(t.Name), newProblem(ErrInvalidValue,
			"must match %s", namePattern))
	case dup:
		r.check(nameLine, nameField, display(t.Name), newProblem(ErrDuplicate,
			"duplicate target name, first used at line %d", first))
	default:
		firstName[t.Name] = nameLine
	}

	kindField := path + ".kind"
	switch {
	case t.Kind == "":
		r.check(at, kindField, "", newProblem(ErrRequired, "required, one of %s", strings.Join(kinds, ", ")))
	case !slices.Contains(kinds, t.Kind):
		r.check(r.line(kindField, at), kindField, display(t.Kind), newProblem(ErrInvalidValue,
			"must be one of %s", strings.Join(kinds, ", ")))
	default:
		// Kind-specific fields are only judged against a known kind:
		// against a typo they would all look wrong.
		for _, f := range kindFields {
			field := path + "." + f.name
			belongs := slices.Contains(f.kinds, t.Kind)
			switch {
			case !f.isSet(t):
				if belongs && f.required {
					r.check(at, field, "", newProblem(ErrRequired, "required for kind %s", t.Kind))
				}
			case !belongs:
				r.check(r.line(field, at), field, "", newProblem(ErrInvalidValue,
					"not valid for kind %s, only for %s", t.Kind, strings.Join(f.kinds, ", ")))
			default:
				if value, p := f.check(t); p != nil {
					r.check(r.line(field, at), field, value, p)
				}
			}
		}
	}

	if t.Interval != nil {
		validateInterval(r, *t.Interval, path+".interval", at)
	}
	validateRetention(r, t.Retention, path+".retention")
}

// minInterval is the shortest schedule the daemon accepts. Parsing already
// rejects negative durations; zero (also what `interval:` with no value
// means) would have the daemon compact one store back to back.
const minInterval = time.Second

func validateInterval(r *report, d Duration, field string, at int) {
	if time.Duration(d) < minInterval {
		r.check(r.line(field, at), field, d.String(), newProblem(ErrInvalidValue,
			"must be at least %s", Duration(minInterval)))
	}
}

func validateRetention(r *report, ret *Retention, path string) {
	if ret == nil {
		return
	}
	at := r.line(path, 0)
	for _, f := range []struct {
		name  string
		value *int64
	}{
		{"max_records", ret.MaxRecords},
		{"max_total_bytes", ret.MaxTotalBytes},
	} {
		if f.value != nil && *f.value < 0 {
			field := path + "." + f.name
			r.check(r.line(field, at), field, strconv.FormatInt(*f.value, 10),
				newProblem(ErrInvalidValue, "must be >= 0"))
		}
	}

	secsField, ageField := path+".max_age_seconds", path+".max_age"
	if s := ret.MaxAgeSeconds; s != nil {
		value := strconv.FormatFloat(*s, 'g', -1, 64)
		switch {
		case math.IsNaN(*s) || math.IsInf(*s, 0):
			r.check(r.line(secsField, at), secsField, value, newProblem(ErrInvalidValue, "must be a finite number"))
		case *s < 0:
			r.check(r.line(secsField, at), secsField, value, newProblem(ErrInvalidValue, "must be >= 0"))
		}
	}
	if ret.MaxAge != nil && *ret.MaxAge <= 0 {
		// max_age_seconds: 0 is Papyra's own (odd) policy and kept
		// verbatim, but max_age exists for humans, and "keep records
		// newer than 0s" is always a mistake there.
		r.check(r.line(ageField, at), ageField, ret.MaxAge.String(), newProblem(ErrInvalidValue, "must be > 0"))
	}
	if ret.MaxAge != nil && ret.MaxAgeSeconds != nil {
		where := ""
		if l, ok := r.lines[secsField]; ok {
			where = fmt.Sprintf(" (line %d)", l)
		}
		r.check(r.line(ageField, at), ageField, "", newProblem(ErrConflict,
			"conflicts with max_age_seconds%s; set only one", where))
	}
}

// normalize folds every max_age into max_age_seconds, so that consumers
// read one field, as Papyra's RetentionPolicy has. It runs only on a valid
// configuration, where the two are never both set.
func normalize(c *Config) {
	foldMaxAge(c.Defaults.Retention)
	for i := range c.Targets {
		foldMaxAge(c.Targets[i].Retention)
	}
}

func foldMaxAge(r *Retention) {
	if r == nil || r.MaxAge == nil {
		return
	}
	secs := time.Duration(*r.MaxAge).Seconds()
	r.MaxAgeSeconds = &secs
	r.MaxAge = nil
}
