package config

import (
	"time"
)

// DefaultPath is where the packaged agent reads its configuration.
const DefaultPath = "/etc/papyra/compact.yaml"

// Kinds of targets. Each names one subpackage of backends/.
const (
	KindJSONL    = "jsonl"
	KindRotating = "rotating"
	KindRedis    = "redis"
	KindMemory   = "memory"
)

// Config is the whole retention configuration. Every path in it is absolute;
// Load rejects relative ones because the agent runs from systemd with "/" as
// its working directory, where a relative path means something else than it
// did in the admin's shell.
type Config struct {
	// File is the path the configuration was read from ("" for Default()).
	File string `yaml:"-"`

	// StateDir holds the agent's own state: cumulative counters, the last
	// result of every target, swap recovery records and scratch files.
	StateDir string `yaml:"state_dir"`
	// LockDir holds one flock(2) file per store. It is never the store's
	// own directory: Papyra's scan reports any file named <store>* there.
	LockDir string `yaml:"lock_dir"`
	// QuarantineDir receives corrupt lines, one subdirectory per target.
	QuarantineDir string `yaml:"quarantine_dir"`

	Metrics  Metrics  `yaml:"metrics"`
	Defaults Defaults `yaml:"defaults"`
	Targets  []Target `yaml:"targets"`

	// Warnings are problems that do not stop the configuration from
	// being used (a password_file others can read); check prints them,
	// run and the daemon log them.
	Warnings []*FieldError `yaml:"-" json:"-"`
}

// Metrics configures the node_exporter textfile output.
type Metrics struct {
	// Textfile is the .prom file written atomically after every run; ""
	// disables it.
	Textfile string `yaml:"textfile"`
}

// Defaults apply to every target that does not set its own value.
type Defaults struct {
	// Retention is used by targets without a retention block of their own.
	Retention *Retention `yaml:"retention"`
	// GracePeriod is how long a file backend keeps draining the replaced
	// file for records appended by writers that opened it just before the
	// swap.
	GracePeriod Duration `yaml:"grace_period"`

	// Interval is how often `papyra-compact daemon` compacts a target
	// that sets no interval of its own. `papyra-compact run`, started by
	// the timer unit, ignores it: there the timer is the schedule.
	Interval Duration `yaml:"interval"`

	// MaxClockSkew is how far after now a record may be stamped before it
	// counts as future-dated: such records are kept (Papyra keeps them),
	// counted (papyra_compact_future_records) and logged once per run.
	// Default 5m.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
}

// Retention is Papyra's RetentionPolicy with Papyra's field names and
// meaning (papyra/persistence/_retention.py). A nil field is "no limit".
type Retention struct {
	// MaxRecords keeps the last N records. 0 keeps everything: Papyra
	// slices with [-0:], which is the whole list.
	MaxRecords *int64 `yaml:"max_records"`
	// MaxAgeSeconds keeps records whose timestamp is >= now - MaxAgeSeconds
	// (boundary kept; no or null timestamp dropped). The YAML may give it
	// as max_age_seconds (a number) or max_age (a duration such as 7d).
	MaxAgeSeconds *float64 `yaml:"max_age_seconds"`
	// MaxAge is the human form of MaxAgeSeconds; Load folds it into
	// MaxAgeSeconds and clears it.
	MaxAge *Duration `yaml:"max_age"`
	// MaxTotalBytes keeps the longest newest-first run of records whose
	// summed Python repr sizes fit, as Papyra counts them.
	MaxTotalBytes *int64 `yaml:"max_total_bytes"`
}

// IsZero reports whether no limit is set at all.
func (r Retention) IsZero() bool {
	return r.MaxRecords == nil && r.MaxAgeSeconds == nil && r.MaxTotalBytes == nil
}

// Target is one store to compact.
type Target struct {
	// Line is the line of the target's entry in the file, for messages.
	Line int `yaml:"-"`

	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// Retention overrides defaults.retention as a whole when set.
	Retention *Retention `yaml:"retention"`
	// GracePeriod overrides defaults.grace_period.
	GracePeriod *Duration `yaml:"grace_period"`

	// Interval overrides defaults.interval for this target: the time
	// from the start of one daemon run of it to the start of the next.
	Interval *Duration `yaml:"interval"`

	// MaxRemoveFraction is the safety valve: a run that would remove more
	// than this share of the store's records (retention removals; lines
	// quarantined as corrupt do not count) refuses before changing
	// anything, unless `run --force` confirms it. Unset: no limit.
	MaxRemoveFraction *Fraction `yaml:"max_remove_fraction"`

	// MinReclaim is the reclaim threshold: a run whose compaction would
	// free less than this (bytes, or a percentage of the store's size)
	// changes nothing and reports what retention left as debt ("below
	// min_reclaim"), so that a big store that expires a little every hour
	// is not rewritten whole every hour. On a rotating store it judges the
	// rewrites alone: segments retention empties are dropped anyway.
	// Unset or 0: every run compacts.
	MinReclaim *Amount `yaml:"min_reclaim"`

	// MaxClockSkew overrides defaults.max_clock_skew for this target.
	MaxClockSkew *Duration `yaml:"max_clock_skew"`

	// KeepFree (rotating stores only) opts the store into emergency
	// drops: when the free space of its file system falls below this
	// (bytes, or a percentage of the file system), the oldest whole
	// rotated segments of the stores that opted in on that file system
	// are removed, oldest records first, until it is met. Never the
	// active file, never a segment holding a record younger than MinKeep.
	KeepFree *Amount `yaml:"keep_free"`
	// MinKeep is required with KeepFree: emergency drops never remove a
	// segment that holds a record younger than this.
	MinKeep *Duration `yaml:"min_keep"`

	// Path is the store file (jsonl) or the active segment (rotating).
	Path string `yaml:"path"`
	// Owner names the user the store belongs to (a user name or a numeric
	// uid), like logrotate's `su`: the store, its directory and every
	// symlink on the way must then belong to that user or to root, and
	// the directory may be group-writable. Unset, the agent refuses a
	// store whose owner is not its directory's (unless root owns the
	// directory) and a directory that group or others may write without
	// the sticky bit.
	Owner string `yaml:"owner"`

	// Rotating settings, Papyra's RotatingFilePersistence names.
	MaxBytes *int64 `yaml:"max_bytes"`
	MaxFiles *int64 `yaml:"max_files"`

	// Redis settings (kind redis). Everything is optional: with none set,
	// the target is Papyra's default, redis://localhost:6379/0, prefix
	// "papyra", system "local". Defaults are applied by the backend, so a
	// decoded Target shows only what the file says.

	// URL is one server: redis://[user[:password]@]host:port/db, rediss://
	// for TLS, or unix:///path/to/socket?db=N, as Papyra's
	// RedisStreamsConfig.url. Not together with Addrs.
	URL string `yaml:"url"`
	// Addrs are host:port seeds: one address is a single server, two or
	// more a Redis Cluster; with MasterName they are the Sentinels.
	Addrs []string `yaml:"addrs"`
	// MasterName is the Sentinel master set name (with Addrs).
	MasterName string `yaml:"master_name"`
	// Cluster forces Redis Cluster mode when Addrs has a single seed.
	Cluster *bool `yaml:"cluster"`
	// DB is the database number (single server or Sentinel; a cluster has
	// only database 0). Default 0, or the URL's.
	DB *int `yaml:"db"`
	// Username is the ACL user (Redis 6+); empty means "default".
	Username string `yaml:"username"`
	// Password authenticates; prefer PasswordFile, which keeps the secret
	// out of a world-readable config.
	Password string `yaml:"password"`
	// PasswordFile holds the password (one line); the backend refuses a
	// file that group or others can read.
	PasswordFile string `yaml:"password_file"`
	// TLS, when present (even empty), connects with TLS.
	TLS *RedisTLS `yaml:"tls"`
	// Prefix is Papyra's key prefix: streams are
	// {prefix}:{system_id}:{events|audits|dead_letters}. Default "papyra".
	Prefix string `yaml:"prefix"`
	// SystemID is Papyra's system_id; "*" compacts every system found
	// with SCAN under the prefix. Default "local".
	SystemID string `yaml:"system_id"`
	// Approximate trims whole stream nodes only (XTRIM … ~), leaving up
	// to one node's entries (stream-node-max-entries, 100 by default)
	// beyond the limit; false adds a small exact step. Default true.
	Approximate *bool `yaml:"approximate"`
	// AgeBy chooses what max_age compares: "id" (default) the stream
	// entry ID's time, trimmed with XTRIM MINID without reading entries;
	// "timestamp" the record's JSON timestamp, exactly as Papyra's reader
	// does, which reads every entry on every run.
	AgeBy string `yaml:"age_by"`
	// TrimLimit caps the entries one trim command may remove (XTRIM …
	// LIMIT), which bounds how long it blocks Redis. Default 5000; keep
	// it above the server's stream-node-max-entries.
	TrimLimit *int64 `yaml:"trim_limit"`
	// BatchSize is the COUNT of every read (XRANGE, XREVRANGE) and the
	// number of IDs per XDEL. Default 1000.
	BatchSize *int64 `yaml:"batch_size"`
	// DutyCycle is the largest share of time the agent keeps Redis busy:
	// after each command it waits (1/duty_cycle - 1) times as long as
	// the command took, so Papyra's writes rarely queue behind it.
	// Between 0 and 1 (1: no pauses). Default 0.1.
	DutyCycle *float64 `yaml:"duty_cycle"`
	// QuarantineCorrupt scans every entry and moves those Papyra cannot
	// read (no data field, not JSON, not an object) to Papyra's
	// quarantine stream, every field kept. Default true; false removes
	// them with retention, counted apart.
	QuarantineCorrupt *bool `yaml:"quarantine_corrupt"`
	// DeleteEmpty deletes a stream left with no entries and no consumer
	// groups. Default false: empty streams are left in place.
	DeleteEmpty *bool `yaml:"delete_empty"`
	// LeaseTTL is the lifetime of the Redis lease that keeps agents on
	// other hosts off the same system; it is renewed every third of it.
	// Default 30s.
	LeaseTTL *Duration `yaml:"lease_ttl"`
	// Timeout bounds connecting and every command. Default 5s.
	Timeout *Duration `yaml:"timeout"`
	// RunTimeout bounds one run of the target; when it passes, the run
	// stops between two commands, reports what it did, and the next run
	// continues. Default 15m.
	RunTimeout *Duration `yaml:"run_timeout"`
}

// RedisTLS configures TLS to Redis. Paths are absolute.
type RedisTLS struct {
	// CAFile is a PEM bundle to verify the server with; empty means the
	// system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name the certificate is checked against.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks (testing only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Policy returns the retention that applies to t.
func (c *Config) Policy(t Target) Retention {
	if t.Retention != nil {
		return *t.Retention
	}
	if c.Defaults.Retention != nil {
		return *c.Defaults.Retention
	}
	return Retention{}
}

// Grace returns the drain grace period that applies to t.
func (c *Config) Grace(t Target) time.Duration {
	if t.GracePeriod != nil {
		return time.Duration(*t.GracePeriod)
	}
	return time.Duration(c.Defaults.GracePeriod)
}

// Interval returns how often the daemon compacts t.
func (c *Config) Interval(t Target) time.Duration {
	if t.Interval != nil {
		return time.Duration(*t.Interval)
	}
	return time.Duration(c.Defaults.Interval)
}

// ClockSkew returns the max_clock_skew that applies to t.
func (c *Config) ClockSkew(t Target) time.Duration {
	if t.MaxClockSkew != nil {
		return time.Duration(*t.MaxClockSkew)
	}
	return time.Duration(c.Defaults.MaxClockSkew)
}

// Default returns the built-in configuration: the packaged directories and
// no targets, so that an agent installed without editing compacts nothing.
func Default() *Config {
	return &Config{
		StateDir:      "/var/lib/papyra-compact",
		LockDir:       "/run/papyra-compact",
		QuarantineDir: "/var/lib/papyra-compact/quarantine",
		Metrics: Metrics{
			Textfile: "/var/lib/prometheus/node-exporter/papyra_compact.prom",
		},
		Defaults: Defaults{
			GracePeriod: Duration(2 * time.Second),
			// Hourly, as the timer unit: the seed's production range
			// is 1-6 hours, and Redis-heavy systems set less.
			Interval: Duration(time.Hour),
			// Papyra stamps records with the writer's clock; NTP keeps
			// hosts within milliseconds, so minutes ahead is a clock
			// that is wrong, not jitter.
			MaxClockSkew: Duration(5 * time.Minute),
		},
	}
}
