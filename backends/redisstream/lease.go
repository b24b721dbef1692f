package redisstream

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/papyra-compact/papyra-compact/backends"
)

// ErrLeaseLost means the run stopped because it no longer held its Redis
// lease (it expired while Redis was unreachable, or another agent took
// it). What was trimmed before that stays trimmed; the next run resumes.
var ErrLeaseLost = errors.New("redis lease lost")

// lease keeps agents on other hosts off the streams of one system while
// this one works on them. The file lock only serializes one machine.
//
// Guarantees: while the lease is held and renewed, no other papyra-compact
// takes it, so two agents never quarantine or trim the same system at the
// same time. It is SET NX PX with a random token, renewed every third of
// its TTL with a compare-and-PEXPIRE script, and released with a
// compare-and-delete script, so an agent never renews or deletes a lease
// that expired and was taken by someone else. If a renewal fails for long
// enough that the lease may have expired, or finds another token, the
// work context is cancelled and Apply stops before its next command.
//
// Not guaranteed: exclusion across a Redis failover that loses the lease
// key (replication is asynchronous), or against a process paused longer
// than the TTL between two commands. Neither can lose data: every trim is
// bounded by the plan's boundary and by the consumer-group floor read
// atomically with it, so two agents trimming at once remove nothing
// either would not. Rejected: Redlock over several masters (it needs
// independent masters and still relies on timing), and the lease as the
// only lock (the file lock also covers a second run on the same host
// before it reaches Redis).
type lease struct {
	b     *Backend
	key   string
	token string
	stop  chan struct{}
	done  chan struct{}
}

// leaseKey is the lease of one system. The hash tag puts it in one slot
// of a cluster whatever the system is called, so the scripts that check
// it always address a single node.
func (b *Backend) leaseKey(system string) string {
	return "papyra-compact:lease:{" + b.cfg.prefix + ":" + system + "}"
}

// acquire takes the lease of system or returns an error wrapping
// backends.ErrLocked that names the holder. The returned context is
// cancelled, with ErrLeaseLost as its cause, when the lease is lost.
func (b *Backend) acquire(ctx context.Context, system string) (*lease, context.Context, error) {
	key := b.leaseKey(system)
	token, err := newToken()
	if err != nil {
		return nil, nil, err
	}
	ok, err := b.client.SetNX(ctx, key, token, b.cfg.leaseTTL).Result()
	if err != nil {
		return nil, nil, b.fail("SET NX", key, err)
	}
	if !ok {
		holder, _ := b.client.Get(ctx, key).Result()
		ttl, _ := b.client.PTTL(ctx, key).Result()
		return nil, nil, fmt.Errorf("redis %s: lease %s is held by %s (expires in %s): %w; another agent is compacting system %q",
			b.endpoint, key, holder, ttl.Round(time.Millisecond), backends.ErrLocked, system)
	}
	lctx, cancel := context.WithCancelCause(ctx)
	l := &lease{b: b, key: key, token: token, stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew(lctx, cancel)
	return l, lctx, nil
}

// newToken identifies this holder: host and PID for people, random bytes
// so that no two holders ever share a token.
func newToken() (string, error) {
	var r [12]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("lease token: %w", err)
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(r[:])), nil
}

// renew extends the lease every third of its TTL until release. A failed
// renewal is retried at the next tick; once the last success is so old
// that the lease may have expired, the work is cancelled.
func (l *lease) renew(ctx context.Context, cancel context.CancelCauseFunc) {
	defer close(l.done)
	ttl := l.b.cfg.leaseTTL
	t := time.NewTicker(ttl / 3)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), ttl/3)
		n, err := renewScript.Run(rctx, l.b.client, []string{l.key}, l.token, ttl.Milliseconds()).Int64()
		rcancel()
		switch {
		case err == nil && n == 1:
			lastOK = time.Now()
		case err == nil:
			cancel(fmt.Errorf("%w: %s no longer holds our token (it expired and another agent took it?)", ErrLeaseLost, l.key))
			return
		case time.Since(lastOK) >= ttl*2/3:
			cancel(fmt.Errorf("%w: cannot renew %s on %s: %v", ErrLeaseLost, l.key, l.b.endpoint, err))
			return
		}
	}
}

// release stops renewing and deletes the lease if it is still ours.
func (l *lease) release() error {
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), l.b.cfg.leaseTTL/3)
	defer cancel()
	if err := releaseScript.Run(ctx, l.b.client, []string{l.key}, l.token).Err(); err != nil {
		return l.b.fail("release lease", l.key, err)
	}
	return nil
}
