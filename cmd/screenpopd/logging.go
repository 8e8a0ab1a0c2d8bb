package main

import (
	"io"
	"log/slog"

	"github.com/screenpop/screenpop/configs"
)

// newLogHandler writes the daemon's log as log_format says: key=value text
// for a person reading a terminal, or one JSON object a line for a log
// pipeline. Either way each attribute appears once: the wiring names a
// component (logger.With("component", ...)) and the package it hands the
// logger to adds only attributes of its own.
func newLogHandler(format string, w io.Writer, level slog.Leveler) slog.Handler {
	opts := &slog.HandlerOptions{Level: level}
	if format == configs.LogFormatJSON {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}
