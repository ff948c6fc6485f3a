package poller

import (
	"context"
	"fmt"
	"log/slog"
)

// gnetLogger adapts an slog.Logger to gnet's logging.Logger. gnet reports
// routine events (engine start, loop exit) at its info level, so those go to
// debug here; warnings and errors keep their level.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(format string, args ...any) { g.log(slog.LevelDebug, format, args) }
func (g gnetLogger) Infof(format string, args ...any)  { g.log(slog.LevelDebug, format, args) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.log(slog.LevelWarn, format, args) }
func (g gnetLogger) Errorf(format string, args ...any) { g.log(slog.LevelError, format, args) }

// Fatalf logs at error level; gnet uses it for nothing fatal to us.
func (g gnetLogger) Fatalf(format string, args ...any) { g.log(slog.LevelError, format, args) }

func (g gnetLogger) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if !g.l.Enabled(ctx, level) {
		return
	}
	g.l.Log(ctx, level, fmt.Sprintf(format, args...), "component", "gnet")
}
