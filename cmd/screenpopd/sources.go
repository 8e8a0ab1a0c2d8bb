package main

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/adapters/file"
	httpsource "github.com/screenpop/screenpop/adapters/http"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// kinds is the one place that maps a source's `type:` to its adapter.
func kinds(pools *postgres.Pools) map[string]adapters.Factory {
	return map[string]adapters.Factory{
		"file":     file.New,
		"http":     httpsource.New,
		"postgres": postgres.NewFactory(pools),
	}
}

// samples are the adapters' embedded sample configurations, for
// `screenpopd sample [source] KIND`; a test keeps their keys those of kinds.
var samples = map[string][]byte{
	"file":     file.Sample,
	"http":     httpsource.Sample,
	"postgres": postgres.Sample,
}

// The hints of configs for a missing `type:` list the kinds of these maps;
// configs cannot import them, so they are handed over before any
// configuration is loaded. The names of kinds do not depend on the pools.
func init() {
	configs.Known = configs.Kinds{Telephony: sortedKeys(telephonyKinds), Sources: sortedKeys(kinds(nil))}
}

func sortedKeys[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

func kindNames[V any](m map[string]V) string {
	return strings.Join(sortedKeys(m), ", ")
}

// aggregatorConfig is the aggregator's configuration with every configured
// source built by its kind. Construction does no I/O, so this is also what
// `config check` runs. Every problem is reported, not just the first, each
// at the key it is about.
func aggregatorConfig(cfg *configs.Config, pools *postgres.Pools, env func(string) string, logger *slog.Logger) (aggregator.Config, error) {
	ac := cfg.Aggregator()
	var errs configs.Errors
	ks := kinds(pools)
	build := func(entry string, s *configs.Source) aggregator.Source {
		factory, ok := ks[s.Type]
		if !ok {
			if s.Type != "" { // a missing type is already reported by configs
				errs = append(errs, cfg.ErrorAt(entry+".type", fmt.Sprintf("%q is not a source type", s.Type), "use one of: "+kindNames(ks)))
			}
			return nil
		}
		src, err := factory(adapters.Spec{
			Name:    s.Name,
			Options: s.Options,
			Files:   cfg.Files,
			Env:     env,
			Logger:  logger.With("source", s.Name),
		})
		if err != nil {
			errs = append(errs, cfg.ErrorsIn(entry, configs.SuggestCommon(err))...)
		}
		return src
	}
	if cfg.Directory != nil {
		ac.Directory.Source = build("directory", cfg.Directory)
	}
	for i := range cfg.Sources {
		ac.Sources[i].Source = build(fmt.Sprintf("sources[%d]", i), &cfg.Sources[i])
	}
	if len(errs) > 0 {
		return ac, errs
	}
	return ac, nil
}
