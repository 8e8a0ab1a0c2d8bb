package demo

import (
	"github.com/screenpop/screenpop/telephony"
)

// NewFromSpec decodes the options of a telephony entry of type demo
// strictly and builds its generator: every problem at the line and column
// of its option (README.md lists them).
func NewFromSpec(spec telephony.Spec) (*Generator, error) {
	var cfg Config
	if err := spec.Decode(&cfg); err != nil {
		return nil, err
	}
	cfg.Name = spec.Name
	if err := cfg.check(spec.At); err != nil {
		return nil, err
	}
	return newGenerator(cfg, spec.Logger), nil
}
