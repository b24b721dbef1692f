package testutil

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LogSignal returns a logger, enabled at every level, that closes the
// returned channel the first time a message containing substr is logged:
// a test waits on it for the moment a run reaches a step it logs.
func LogSignal(substr string) (*slog.Logger, <-chan struct{}) {
	h := &signalHandler{substr: substr, ch: make(chan struct{}), once: &sync.Once{}}
	return slog.New(h), h.ch
}

type signalHandler struct {
	substr string
	ch     chan struct{}
	once   *sync.Once
}

func (h *signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.substr) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}

func (h *signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *signalHandler) WithGroup(string) slog.Handler      { return h }
