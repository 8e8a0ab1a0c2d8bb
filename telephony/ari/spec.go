package ari

import (
	"github.com/screenpop/screenpop/telephony"
)

// options are the keys of a telephony entry of type ari: Config's own and
// the variable the password is read from.
type options struct {
	Config      `yaml:",inline"`
	PasswordEnv string `yaml:"password_env"`
}

// ConfigFromSpec decodes the options of a telephony entry of type ari
// strictly into a Config, reads the password from the environment variable
// password_env names, and checks the result: every problem, each at the
// line and column of its option (README.md lists them). The daemon
// (NewFromSpec) and `screenpopd pbx check` build from it alike.
func ConfigFromSpec(spec telephony.Spec) (Config, error) {
	var o options
	if err := spec.Decode(&o); err != nil {
		return Config{}, err
	}
	cfg := o.Config
	cfg.Name, cfg.AgentOf = spec.Name, spec.AgentOf
	if o.PasswordEnv != "" {
		cfg.Password = spec.Getenv(o.PasswordEnv)
	}
	err := cfg.check(func(key, format string, args ...any) error {
		if key == "password" { // a file names the variable, never the password
			if o.PasswordEnv == "" {
				return spec.At("password_env", "password_env is required: name the environment variable holding the ARI user's password")
			}
			return spec.At("password_env", "password_env: environment variable %s is not set or empty", o.PasswordEnv)
		}
		return spec.At(key, format, args...)
	})
	if err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// NewFromSpec builds the source of a telephony entry of type ari
// (ConfigFromSpec), without I/O.
func NewFromSpec(spec telephony.Spec) (*Source, error) {
	cfg, err := ConfigFromSpec(spec)
	if err != nil {
		return nil, err
	}
	return newSource(cfg, spec.Logger, spec.Registerer)
}
