package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// redisLog routes go-redis's internal messages (connection pool retries,
// which it otherwise prints to stderr with the standard logger) to our
// logger at debug level: the backend already turns every failure into an
// error that names the server and key, so these lines add only noise to
// the journal.
type redisLog struct{ log *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}

// quietRedis installs redisLog. go-redis keeps its logger in a package
// variable, so this is done once, from main's wiring, never from a package.
func quietRedis(log *slog.Logger) { redis.SetLogger(redisLog{log: log}) }
