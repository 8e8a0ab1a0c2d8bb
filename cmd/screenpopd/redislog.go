package main

import (
	"context"
	"fmt"
	"log/slog"
)

// redisLog takes go-redis's own log lines ("connection pool: failed to
// dial after 5 attempts", several a second while Redis is down) at debug
// level: the daemon says what an outage means itself, once
// (screenpop_redis_up, the pop bus's, the floor's and the near cache's
// warnings, repeats held back), and -log-level debug still shows them.
type redisLog struct{ logger *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	if l.logger.Enabled(ctx, slog.LevelDebug) {
		l.logger.DebugContext(ctx, fmt.Sprintf(format, v...))
	}
}
