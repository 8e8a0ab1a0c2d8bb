// Package adapters wires the data-source kinds IT can configure. Each kind
// lives in its own folder (adapters/file, adapters/postgres, adapters/http)
// with a README and an embedded sample.yaml; this file is the one place that
// maps a configured `type:` to the kind's constructor.
package adapters

import (
	"io/fs"
	"log/slog"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/aggregator"
)

// Spec is what a kind's constructor gets for one configured source.
type Spec struct {
	// Name of the source, for errors and logs.
	Name string
	// Options are the source's kind-specific keys (everything but the
	// options common to all sources), as a YAML mapping node, so that the
	// kind can decode them strictly with configs.DecodeStrict and report
	// the line of a bad option.
	Options *yaml.Node
	// Files resolves relative paths (a CSV file, a JSON file): the folder of
	// the configuration file, or the embedded demo files.
	Files fs.FS
	// Env looks up environment variables: secrets (passwords, tokens, DSNs)
	// are named in the file and read from the environment, never written in
	// it. Packages never call os.Getenv themselves.
	Env func(string) string
	// Logger is the source's child logger: the wiring has named the
	// source on it (source=<name>), so a kind adds only its own
	// attributes, never that one again.
	Logger *slog.Logger
}

// Factory builds a source from its Spec. It validates the options and must
// not do I/O that can block (no connecting): the daemon must start, and
// `config check` must run, while a database is down.
type Factory func(Spec) (aggregator.Source, error)
