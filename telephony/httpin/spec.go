package httpin

import (
	"github.com/screenpop/screenpop/bearer"
	"github.com/screenpop/screenpop/telephony"
)

// options are the keys of a telephony entry of type http: Config's own and
// the variable the tokens are read from.
type options struct {
	Config    `yaml:",inline"`
	TokensEnv string `yaml:"tokens_env"`
}

// NewFromSpec decodes the options of a telephony entry of type http
// strictly, reads the tokens from the environment variable tokens_env names
// (comma-separated) and builds the source: every problem at the line and
// column of its option (README.md lists them).
func NewFromSpec(spec telephony.Spec) (*Source, error) {
	var o options
	if err := spec.Decode(&o); err != nil {
		return nil, err
	}
	cfg := o.Config
	cfg.Name = spec.Name
	if o.TokensEnv != "" {
		cfg.Tokens = bearer.SplitList(spec.Getenv(o.TokensEnv))
	}
	tokens, err := cfg.check(func(key, format string, args ...any) error {
		if key == "tokens" { // a file names the variable, never the tokens
			switch {
			case o.TokensEnv == "":
				return spec.At("tokens_env", "tokens_env is required: name the environment variable holding the PBX's bearer token(s), comma-separated")
			case len(cfg.Tokens) == 0:
				return spec.At("tokens_env", "tokens_env: environment variable %s is not set or empty", o.TokensEnv)
			}
			return spec.At("tokens_env", "tokens_env: environment variable %s: "+format, append([]any{o.TokensEnv}, args...)...)
		}
		return spec.At(key, format, args...)
	})
	if err != nil {
		return nil, err
	}
	return newSource(cfg, tokens, spec.AgentOf, spec.Logger, spec.Registerer)
}
