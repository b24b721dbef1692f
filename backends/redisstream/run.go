package redisstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
)

// errRunDeadline is the cause of a run stopped by run_timeout: Apply
// ends cleanly with what it did, and says so in a note.
var errRunDeadline = errors.New("run_timeout reached")

// ping checks, within one timeout, that the server answers: with TLS
// configured, first that the TLS handshake succeeds, so that a server
// that does not speak TLS is named as such (go-redis would wait for a
// reply the server never sends, and retry, and end with "context
// deadline exceeded").
func (b *Backend) ping(ctx context.Context) error {
	if b.tls != nil && len(b.seeds) > 0 {
		ctx, cancel := context.WithTimeout(ctx, b.timeout)
		defer cancel()
		d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: b.tls.Clone()}
		if d.Config.ServerName == "" {
			if host, _, err := net.SplitHostPort(b.seeds[0]); err == nil {
				d.Config.ServerName = host
			}
		}
		c, err := d.DialContext(ctx, "tcp", b.seeds[0])
		if err != nil {
			var ne *net.OpError
			if errors.As(err, &ne) && ne.Op == "dial" {
				return b.fail("connect", "", err)
			}
			return b.fail("TLS handshake with "+b.seeds[0], "", fmt.Errorf("%w (within timeout %s): does the server speak TLS? The target sets tls", err, b.timeout))
		}
		c.Close()
	}
	if err := b.client.Ping(ctx).Err(); err != nil {
		return b.failCtx(ctx, "PING", "", err)
	}
	return nil
}

// aclUser names the ACL user the agent authenticates as.
func (b *Backend) aclUser() string {
	if b.username == "" {
		return "default"
	}
	return b.username
}

// isPermissionError reports whether err is the server refusing a command
// to the ACL user, directly (NOPERM) or inside a script.
func isPermissionError(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "NOPERM") || strings.Contains(s, "can't run this command") ||
		strings.Contains(s, "no permissions to")
}

// checkPermissions asks the server, with ACL DRYRUN (Redis 7.0+), whether
// the ACL user may run every command the plan's Apply will run, inside
// scripts included, on the keys it will run them on, before anything is
// changed. Scripts are checked by their commands: a script is allowed
// as a whole (EVALSHA) and then refused command by command at run time.
// Where ACL DRYRUN is not available (older servers, or a user not
// allowed to run it) the check is skipped, and a refusal at run time is
// reported naming the command and the user (failCtx).
func (b *Backend) checkPermissions(ctx context.Context, p *plan) error {
	type check struct{ args []string }
	var checks []check
	add := func(args ...string) { checks = append(checks, check{args}) }
	systems := map[string]bool{}
	for _, sp := range p.streams {
		if !systems[sp.system] {
			systems[sp.system] = true
			lk := b.leaseKey(sp.system)
			add("SET", lk, "x", "NX", "PX", "1000")
			add("GET", lk)
			add("PEXPIRE", lk, "1000")
			add("DEL", lk)
			add("EVALSHA", renewScript.Hash(), "1", lk, "x", "1000")
		}
		changes := !sp.boundary.isZero() || sp.maxlen > 0 || len(sp.del) > 0 || len(sp.corrupt) > 0
		if !changes {
			continue
		}
		k := sp.key
		add("EVALSHA", trimScript.Hash(), "1", k, "minid", "0-1", "1", "1", "1")
		add("EXISTS", k)
		add("XINFO", "GROUPS", k)
		add("XPENDING", k, "g", "-", "+", "1")
		add("XRANGE", k, "-", "+", "COUNT", "1")
		add("XLEN", k)
		if !sp.boundary.isZero() || sp.maxlen > 0 {
			add("XTRIM", k, "MINID", "~", "0-1", "LIMIT", "1")
		}
		if len(sp.del) > 0 || len(sp.corrupt) > 0 {
			add("XDEL", k, "0-1")
		}
		if len(sp.corrupt) > 0 {
			q := b.quarantineKey(sp.system, k)
			idx, err := movesKey(q)
			if err != nil {
				return b.fail("quarantine", k, err)
			}
			add("EVALSHA", copyScript.Hash(), "2", q, idx, "f", "v")
			add("XADD", q, "*", "source", k)
			add("XRANGE", q, "-", "+", "COUNT", "1")
			add("HGET", idx, "f")
			add("HSET", idx, "f", "v")
			add("HDEL", idx, "f")
		}
		if b.cfg.deleteEmpty {
			add("DEL", k)
		}
	}
	user := b.aclUser()
	for _, c := range checks {
		args := append([]any{"ACL", "DRYRUN", user}, toAny(c.args)...)
		res, err := b.client.Do(ctx, args...).Text()
		if err != nil {
			if ctx.Err() != nil {
				return b.failCtx(ctx, "ACL DRYRUN", "", err)
			}
			// Not available here: Redis < 7.0, or the user may not run
			// ACL. Run-time refusals still name command and user.
			b.log.Debug("ACL DRYRUN unavailable; permissions are checked as the run goes", "err", err)
			return nil
		}
		if res != "OK" {
			return fmt.Errorf("redis %s: ACL user %s may not run %s: %s; nothing was changed. Grant the command and key to the user (ACL SETUSER %s …) or configure another username",
				b.endpoint, user, strings.Join(c.args[:min(len(c.args), 3)], " "), res, user)
		}
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
