package redisstream

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/papyra-compact/papyra-compact/backends"
	"github.com/papyra-compact/papyra-compact/config"
)

// Defaults, Papyra's where Papyra has one (RedisStreamsConfig, §5.1).
const (
	defaultAddr      = "localhost:6379"
	defaultPrefix    = "papyra"
	defaultSystemID  = "local"
	defaultTrimLimit = 5000
	defaultBatch     = 1000
	// defaultQuarantineMax is the most unreadable entries one run moves
	// out of one stream: a stream of millions of them (another program's
	// data under Papyra's prefix) is quarantined over several runs, in
	// bounded memory, and a run that moves them one at a time still ends
	// well within run_timeout.
	defaultQuarantineMax = 100_000
	// defaultDeleteMax is the most records one run deletes one by one
	// (XDEL) from one stream: records age drops above the trim, out of
	// order by timestamp or above an entry too deeply nested to tell.
	defaultDeleteMax = 100_000
	defaultLeaseTTL  = 30 * time.Second
	defaultTimeout   = 5 * time.Second
	defaultDuty      = 0.1
	// defaultRunTimeout bounds one run (Plan and Apply) of a target: long
	// enough for tens of millions of entries at the default duty cycle,
	// short enough that an hourly timer's runs never pile up.
	defaultRunTimeout = 15 * time.Minute
	// allSystems is the system_id that discovers every system.
	allSystems = "*"
)

// kinds are Papyra's three streams per system, in the order Papyra's own
// compaction visits them.
var kinds = []string{"events", "audits", "dead_letters"}

// settings are a target's Redis settings with the defaults applied.
type settings struct {
	prefix, systemID string
	approximate      bool
	ageByTimestamp   bool
	trimLimit, batch int64
	duty             float64
	quarantine       bool
	// quarantineMax bounds the unreadable entries one run quarantines
	// per stream (and the plan holds: one item each).
	quarantineMax int
	// deleteMax bounds the records one run deletes one by one per
	// stream (and the plan holds), age_by timestamp's out of order.
	deleteMax   int
	deleteEmpty bool
	leaseTTL    time.Duration
	runTimeout  time.Duration
}

// Backend compacts the Papyra streams of one Redis target.
type Backend struct {
	name     string
	cfg      settings
	client   redis.UniversalClient
	endpoint string // names the server in every message: host:port, cluster:…, sentinel:…
	log      *slog.Logger
	// timeout bounds connecting and each command; username is the ACL
	// user (for messages and ACL DRYRUN); tls and seeds serve the TLS
	// check before the first command.
	timeout  time.Duration
	username string
	tls      *tls.Config
	seeds    []string
}

var _ backends.Backend = (*Backend)(nil)

// New returns a backend for target t (kind redis). It connects lazily:
// nothing goes over the network until Plan.
func New(t config.Target, env backends.Env) (backends.Backend, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	cfg := settings{
		prefix:         cmp.Or(t.Prefix, defaultPrefix),
		systemID:       cmp.Or(t.SystemID, defaultSystemID),
		approximate:    t.Approximate == nil || *t.Approximate,
		ageByTimestamp: t.AgeBy == "timestamp",
		trimLimit:      defaultTrimLimit,
		batch:          defaultBatch,
		quarantine:     t.QuarantineCorrupt == nil || *t.QuarantineCorrupt,
		quarantineMax:  defaultQuarantineMax,
		deleteMax:      defaultDeleteMax,
		deleteEmpty:    t.DeleteEmpty != nil && *t.DeleteEmpty,
		leaseTTL:       defaultLeaseTTL,
		duty:           defaultDuty,
		runTimeout:     defaultRunTimeout,
	}
	if t.RunTimeout != nil {
		cfg.runTimeout = time.Duration(*t.RunTimeout)
	}
	if t.DutyCycle != nil {
		cfg.duty = *t.DutyCycle
	}
	if t.TrimLimit != nil {
		cfg.trimLimit = *t.TrimLimit
	}
	if t.BatchSize != nil {
		cfg.batch = *t.BatchSize
	}
	if t.LeaseTTL != nil {
		cfg.leaseTTL = time.Duration(*t.LeaseTTL)
	}
	c, err := newClient(t)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", t.Name, err)
	}
	return &Backend{name: t.Name, cfg: cfg, client: c.client, endpoint: c.endpoint, log: env.Logger,
		timeout: c.timeout, username: c.username, tls: c.tls, seeds: c.seeds}, nil
}

// LockKey names the server, database, prefix and system of target t
// (kind redis), so that two targets for the same streams share one lock
// whatever their names. It reads the configuration only: no secret, no
// connection, so an unprivileged `status` can compute it.
func LockKey(t config.Target) (string, error) {
	endpoint, db, err := endpointOf(t)
	if err != nil {
		return "", fmt.Errorf("target %s: %w", t.Name, err)
	}
	return "redis:" + endpoint + "/" + strconv.Itoa(db) + "/" + cmp.Or(t.Prefix, defaultPrefix) + ":" + cmp.Or(t.SystemID, defaultSystemID), nil
}

// endpointOf names the server of t as every message does: host:port,
// cluster:…, sentinel:…; and its database.
func endpointOf(t config.Target) (string, int, error) {
	if t.URL != "" {
		opts, err := redis.ParseURL(t.URL)
		if err != nil {
			return "", 0, fmt.Errorf("url: %w", err)
		}
		return opts.Addr, opts.DB, nil
	}
	addrs := t.Addrs
	if len(addrs) == 0 {
		addrs = []string{defaultAddr}
	}
	db := 0
	if t.DB != nil {
		db = *t.DB
	}
	sorted := slices.Sorted(slices.Values(addrs))
	switch {
	case t.MasterName != "":
		return "sentinel:" + t.MasterName + "@" + strings.Join(sorted, ","), db, nil
	case t.Cluster != nil && *t.Cluster || len(addrs) > 1:
		return "cluster:" + strings.Join(sorted, ","), db, nil
	}
	return addrs[0], db, nil
}

// conn is what newClient builds.
type conn struct {
	client   redis.UniversalClient
	endpoint string
	timeout  time.Duration
	username string
	tls      *tls.Config
	seeds    []string
}

// newClient builds a go-redis UniversalClient: one code path for a single
// server, Sentinel and Cluster.
func newClient(t config.Target) (conn, error) {
	timeout := defaultTimeout
	if t.Timeout != nil {
		timeout = time.Duration(*t.Timeout)
	}
	password := t.Password
	if t.PasswordFile != "" {
		p, err := readPasswordFile(t.PasswordFile)
		if err != nil {
			return conn{}, err
		}
		password = p
	}
	tlsConfig, err := tlsConfig(t.TLS)
	if err != nil {
		return conn{}, err
	}
	endpoint, db, err := endpointOf(t)
	if err != nil {
		return conn{}, err
	}

	if t.URL != "" {
		opts, err := redis.ParseURL(t.URL)
		if err != nil {
			return conn{}, fmt.Errorf("url: %w", err)
		}
		if password != "" {
			opts.Password = password
		}
		if t.Username != "" {
			opts.Username = t.Username
		}
		if tlsConfig != nil {
			if opts.TLSConfig != nil && tlsConfig.ServerName == "" {
				tlsConfig.ServerName = opts.TLSConfig.ServerName
			}
			opts.TLSConfig = tlsConfig
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = timeout, timeout, timeout
		opts.ClientName, opts.DisableIdentity = "papyra-compact", true
		var seeds []string
		if opts.Network != "unix" {
			seeds = []string{opts.Addr}
		}
		return conn{client: redis.NewClient(opts), endpoint: endpoint, timeout: timeout,
			username: opts.Username, tls: opts.TLSConfig, seeds: seeds}, nil
	}

	addrs := t.Addrs
	if len(addrs) == 0 {
		addrs = []string{defaultAddr}
	}
	cluster := t.Cluster != nil && *t.Cluster
	opts := &redis.UniversalOptions{
		Addrs:           addrs,
		MasterName:      t.MasterName,
		IsClusterMode:   cluster,
		DB:              db,
		Username:        t.Username,
		Password:        password,
		TLSConfig:       tlsConfig,
		DialTimeout:     timeout,
		ReadTimeout:     timeout,
		WriteTimeout:    timeout,
		ClientName:      "papyra-compact",
		DisableIdentity: true,
	}
	return conn{client: redis.NewUniversalClient(opts), endpoint: endpoint, timeout: timeout,
		username: t.Username, tls: tlsConfig, seeds: addrs}, nil
}

// readPasswordFile reads a one-line secret and refuses a file that group
// or others may read: the config file is world-readable, the secret must
// not be.
func readPasswordFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	if err := config.SecretMode(fi.Mode()); err != nil {
		return "", fmt.Errorf("password_file %s %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("password_file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func tlsConfig(t *config.RedisTLS) (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Runs are serialized on this machine by the file lock on LockKey; the
// Redis lease (see lease.go) keeps other hosts off. Nothing is swapped:
// every change is a server-side command.

// Recover implements backends.Backend. There is nothing to recover: every
// trim and delete is one atomic server-side command, and the only two-step
// operation, moving a corrupt entry to quarantine, is made idempotent by
// Apply itself (it looks for the entry in the quarantine stream before
// adding it again).
func (b *Backend) Recover(context.Context) error { return nil }

// Close closes the connections.
func (b *Backend) Close() error { return b.client.Close() }

// streamKey is Papyra's key of one stream.
func (b *Backend) streamKey(system, kind string) string {
	return b.cfg.prefix + ":" + system + ":" + kind
}

// quarantineKey is Papyra's quarantine stream for source (§5.2).
func (b *Backend) quarantineKey(system, source string) string {
	return b.cfg.prefix + ":" + system + ":quarantine:" + strings.ReplaceAll(source, ":", "_")
}

// fail wraps a Redis error with the server and the key, so that a failed
// target says where and on what.
func (b *Backend) fail(op, key string, err error) error {
	if key == "" {
		return fmt.Errorf("redis %s: %s: %w", b.endpoint, op, err)
	}
	return fmt.Errorf("redis %s: %s %s: %w", b.endpoint, op, key, err)
}

// failCtx is fail for a command run under ctx: when ctx was cancelled
// with a cause (the lease could not be renewed, say, because the master
// died), the cause says more than "context canceled".
func (b *Backend) failCtx(ctx context.Context, op, key string, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && !errors.Is(cause, ctx.Err()) {
		err = cause
	}
	if isPermissionError(err) {
		return b.fail(op, key, fmt.Errorf("ACL user %s is not allowed to run it: %w", b.aclUser(), err))
	}
	return b.fail(op, key, err)
}

// ctxErr returns ctx's error (or the cause it was cancelled with, such as
// a lost lease) wrapped for key.
func (b *Backend) ctxErr(ctx context.Context, key string) error {
	if ctx.Err() == nil {
		return nil
	}
	cause := context.Cause(ctx)
	if cause == nil || errors.Is(cause, ctx.Err()) {
		cause = ctx.Err()
	}
	return b.fail("stopped on", key, cause)
}

// pacer spaces one loop's commands so that the agent keeps Redis busy at
// most duty_cycle of the time: after a command that took d, the next one
// waits d × (1/duty_cycle - 1), at most maxPause. Redis runs one command
// at a time, so a Papyra XADD that arrives while a trim runs waits for
// it; pauses make that rare, whatever the server's speed, without a
// fixed rate to tune. d is the agent's own command, timed around the one
// call; the cap keeps a server stall (a fork, a slow disk, a failover,
// go-redis retrying meanwhile) from being multiplied into minutes of
// sleeping: the stall was not the agent's load on Redis.
type pacer struct {
	b     *Backend
	key   string
	start time.Time
	last  time.Duration
}

// maxPause caps one pause of the pacer.
const maxPause = 250 * time.Millisecond

func (b *Backend) pacer(key string) *pacer { return &pacer{b: b, key: key} }

// pause is how long to wait after a command that took d.
func (p *pacer) pause(d time.Duration) time.Duration {
	return min(maxPause, time.Duration(float64(d)*(1/p.b.cfg.duty-1)))
}

// wait pauses after the previous command, returns the context's error if
// the run is being stopped, and starts timing the next command.
func (p *pacer) wait(ctx context.Context) error {
	if pause := p.pause(p.last); pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
	if err := p.b.ctxErr(ctx, p.key); err != nil {
		return err
	}
	p.start = time.Now()
	return nil
}

// done records how long the command since wait took, and returns it.
func (p *pacer) done() time.Duration {
	p.last = time.Since(p.start)
	return p.last
}
