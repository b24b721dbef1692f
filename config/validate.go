package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
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

// ownerPattern is a user name as useradd accepts it by default (at most
// 32 characters), or a numeric uid. Whether the user exists is checked
// when the target runs, on the host it runs on.
var ownerPattern = regexp.MustCompile(`^([a-z_][a-z0-9_-]{0,30}[a-z0-9_$-]?|[0-9]{1,10})$`)

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
		name:  "owner",
		kinds: []string{KindJSONL, KindRotating},
		isSet: func(t *Target) bool { return t.Owner != "" },
		check: func(t *Target) (string, *problem) {
			if !ownerPattern.MatchString(t.Owner) {
				return display(t.Owner), newProblem(ErrInvalidValue, "must be a user name (%s) or a numeric uid", ownerPattern)
			}
			return "", nil
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
	{
		name:  "keep_free",
		kinds: []string{KindRotating},
		isSet: func(t *Target) bool { return t.KeepFree != nil },
		check: func(t *Target) (string, *problem) {
			a := *t.KeepFree
			switch {
			case a.IsZero():
				return a.String(), newProblem(ErrInvalidValue, "must be more than 0 (leave it out to opt out of emergency drops)")
			case a.Percent >= 100:
				return a.String(), newProblem(ErrInvalidValue, "must be less than 100%%")
			case t.MinKeep == nil:
				return a.String(), newProblem(ErrRequired, "needs min_keep: the youngest record age an emergency drop may remove (such as 1d)")
			}
			return "", nil
		},
	},
	{
		name:  "min_keep",
		kinds: []string{KindRotating},
		isSet: func(t *Target) bool { return t.MinKeep != nil },
		check: func(t *Target) (string, *problem) {
			if t.KeepFree == nil {
				return t.MinKeep.String(), newProblem(ErrInvalidValue, "is only used with keep_free")
			}
			return "", nil
		},
	},
	// Redis: connection.
	{
		name:  "url",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.URL != "" },
		check: checkRedisURL,
	},
	{
		name:  "addrs",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Addrs != nil },
		check: func(t *Target) (string, *problem) {
			if len(t.Addrs) == 0 {
				return "", newProblem(ErrInvalidValue, "must list at least one host:port")
			}
			for _, a := range t.Addrs {
				if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
					return display(a), newProblem(ErrInvalidValue, "each address must be host:port")
				}
			}
			return "", nil
		},
	},
	{
		name:  "master_name",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.MasterName != "" },
		check: func(t *Target) (string, *problem) {
			if len(t.Addrs) == 0 {
				return display(t.MasterName), newProblem(ErrRequired, "needs addrs, the Sentinel addresses")
			}
			return "", nil
		},
	},
	{
		name:  "cluster",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Cluster != nil },
		check: func(t *Target) (string, *problem) {
			switch {
			case *t.Cluster && len(t.Addrs) == 0:
				return "", newProblem(ErrRequired, "needs addrs, the cluster seed addresses")
			case *t.Cluster && t.MasterName != "":
				return "", newProblem(ErrConflict, "conflicts with master_name; Sentinel and Cluster are exclusive")
			}
			return "", nil
		},
	},
	{
		name:  "db",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.DB != nil },
		check: func(t *Target) (string, *problem) {
			value := strconv.Itoa(*t.DB)
			switch {
			case *t.DB < 0:
				return value, newProblem(ErrInvalidValue, "must be >= 0")
			case t.URL != "":
				return value, newProblem(ErrConflict, "conflicts with url; put the database in the url")
			case *t.DB != 0 && (len(t.Addrs) > 1 && t.MasterName == "" || t.Cluster != nil && *t.Cluster):
				return value, newProblem(ErrInvalidValue, "a Redis Cluster has only database 0")
			}
			return "", nil
		},
	},
	{
		name:  "username",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Username != "" },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		// The value is a secret: messages never show it.
		name:  "password",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Password != "" },
		check: func(t *Target) (string, *problem) {
			if t.PasswordFile != "" {
				return "", newProblem(ErrConflict, "conflicts with password_file; set only one")
			}
			return "", nil
		},
	},
	{
		name:  "password_file",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.PasswordFile != "" },
		check: func(t *Target) (string, *problem) { return display(t.PasswordFile), absolute(t.PasswordFile) },
	},
	{
		name:  "tls",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.TLS != nil },
		check: func(t *Target) (string, *problem) {
			for _, p := range []string{t.TLS.CAFile, t.TLS.CertFile, t.TLS.KeyFile} {
				if p != "" && absolute(p) != nil {
					return display(p), newProblem(ErrRelativePath, "ca_file, cert_file and key_file must be absolute paths")
				}
			}
			if (t.TLS.CertFile == "") != (t.TLS.KeyFile == "") {
				return "", newProblem(ErrInvalidValue, "cert_file and key_file go together")
			}
			return "", nil
		},
	},
	// Redis: what to compact and how.
	{
		name:  "prefix",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Prefix != "" },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		name:  "system_id",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.SystemID != "" },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		name:  "approximate",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Approximate != nil },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		name:  "age_by",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.AgeBy != "" },
		check: func(t *Target) (string, *problem) {
			if t.AgeBy == "id" || t.AgeBy == "timestamp" {
				return "", nil
			}
			return display(t.AgeBy), newProblem(ErrInvalidValue, "must be id or timestamp")
		},
	},
	{
		name:  "trim_limit",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.TrimLimit != nil },
		// Redis spends about 0.05 ms per 1,000 entries trimmed; a
		// million would block it for tens of milliseconds.
		check: func(t *Target) (string, *problem) { return between(*t.TrimLimit, 1, 1_000_000) },
	},
	{
		name:  "batch_size",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.BatchSize != nil },
		// Reading 1,000 entries costs Redis about 0.5 ms: the cap keeps
		// every read short, never an unbounded XRANGE.
		check: func(t *Target) (string, *problem) { return between(*t.BatchSize, 1, 100_000) },
	},
	{
		name:  "duty_cycle",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.DutyCycle != nil },
		check: func(t *Target) (string, *problem) {
			if d := *t.DutyCycle; d > 0 && d <= 1 {
				return "", nil
			}
			return strconv.FormatFloat(*t.DutyCycle, 'g', -1, 64), newProblem(ErrInvalidValue, "must be > 0 and <= 1")
		},
	},
	{
		name:  "quarantine_corrupt",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.QuarantineCorrupt != nil },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		name:  "delete_empty",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.DeleteEmpty != nil },
		check: func(*Target) (string, *problem) { return "", nil },
	},
	{
		name:  "lease_ttl",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.LeaseTTL != nil },
		check: func(t *Target) (string, *problem) {
			if time.Duration(*t.LeaseTTL) < time.Second {
				return t.LeaseTTL.String(), newProblem(ErrInvalidValue, "must be at least 1s")
			}
			return "", nil
		},
	},
	{
		name:  "timeout",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.Timeout != nil },
		check: func(t *Target) (string, *problem) {
			if *t.Timeout <= 0 {
				return t.Timeout.String(), newProblem(ErrInvalidValue, "must be > 0")
			}
			return "", nil
		},
	},
	{
		name:  "run_timeout",
		kinds: redisOnly,
		isSet: func(t *Target) bool { return t.RunTimeout != nil },
		check: func(t *Target) (string, *problem) {
			if time.Duration(*t.RunTimeout) < time.Second {
				return t.RunTimeout.String(), newProblem(ErrInvalidValue, "must be at least 1s")
			}
			return "", nil
		},
	},
}

// redisOnly is the kinds list of every Redis row.
var redisOnly = []string{KindRedis}

// checkRedisURL accepts the URL forms go-redis and redis-py share. Messages
// show the URL with its password redacted.
func checkRedisURL(t *Target) (string, *problem) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", newProblem(ErrInvalidValue, "not a URL")
	}
	value := display(u.Redacted())
	switch {
	case u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix":
		return value, newProblem(ErrInvalidValue, "must be redis://, rediss:// or unix://")
	case u.Scheme == "unix" && u.Path == "":
		return value, newProblem(ErrInvalidValue, "unix:// needs a socket path")
	case u.Scheme != "unix" && u.Host == "":
		return value, newProblem(ErrInvalidValue, "needs a host")
	case len(t.Addrs) > 0:
		return value, newProblem(ErrConflict, "conflicts with addrs; set only one")
	}
	if _, set := u.User.Password(); set && (t.Password != "" || t.PasswordFile != "") {
		return value, newProblem(ErrConflict, "has a password and so does password or password_file; set only one")
	}
	return "", nil
}

func between(n, lo, hi int64) (string, *problem) {
	if n >= lo && n <= hi {
		return "", nil
	}
	return strconv.FormatInt(n, 10), newProblem(ErrInvalidValue, "must be between %d and %d", lo, hi)
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
	if m := t.MinReclaim; m != nil && m.Percent >= 100 {
		field := path + ".min_reclaim"
		r.check(r.line(field, at), field, m.String(), newProblem(ErrInvalidValue,
			"must be less than 100%% (a run can never free more than the whole store)"))
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
