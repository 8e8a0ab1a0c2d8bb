package main

import (
	"fmt"
	"log/slog"
	"slices"
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
	configs.Known = configs.Kinds{Telephony: sortedKeys(telephonyKinds), Sources: sortedKeys(kinds(nil)),
		Params: slices.Sorted(slices.Values(aggregator.ParamNames))}
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

// aggregatorConfig builds every configured source and the aggregator's
// configuration. Construction does no I/O, so this is also what
// `config check` runs. Every problem is reported, not just the first.
func aggregatorConfig(cfg *configs.Config, pools *postgres.Pools, env func(string) string, logger *slog.Logger) (aggregator.Config, error) {
	ac := aggregator.Config{
		Region:       cfg.Region,
		Deadline:     cfg.Deadline,
		HistoryLimit: cfg.HistoryLimit,
	}
	for _, s := range cfg.Sections {
		ac.Sections = append(ac.Sections, aggregator.SectionSpec{Name: s.Name, Title: s.Title})
	}
	var errs configs.Errors
	ks := kinds(pools)
	build := func(path string, s *configs.Source) (aggregator.SourceSpec, bool) {
		factory, ok := ks[s.Type]
		if !ok {
			if s.Type != "" { // a missing type is already reported by configs
				errs = append(errs, configs.Error{File: cfg.File, Line: s.Line, Path: path,
					Msg: fmt.Sprintf("unknown source type %q", s.Type), Fix: "use one of: " + kindNames(ks)})
			}
			return aggregator.SourceSpec{}, false
		}
		src, err := factory(adapters.Spec{
			Name:    s.Name,
			Options: s.Options,
			Files:   cfg.Files,
			Env:     env,
			Logger:  logger.With("source", s.Name),
		})
		if err != nil {
			errs = append(errs, configs.AtAll(cfg.File, s.Line, path, configs.SuggestCommon(err))...)
			return aggregator.SourceSpec{}, false
		}
		spec := aggregator.SourceSpec{
			Name:          s.Name,
			Section:       s.Section,
			Source:        src,
			Timeout:       s.Timeout,
			CacheTTL:      s.CacheTTL,
			FreshFor:      s.FreshFor,
			Required:      s.Required,
			Needs:         s.Needs,
			MaxConcurrent: s.MaxConcurrent,
			Breaker: aggregator.BreakerSpec{
				Failures: s.Breaker.Failures,
				OpenFor:  s.Breaker.OpenFor,
				Disabled: s.Breaker.Disabled,
			},
			Mapping: aggregator.Mapping{
				Mode:    s.Mapping.Mode,
				Label:   s.Mapping.Label,
				Key:     s.Mapping.Key,
				MaxRows: s.Mapping.MaxRows,
			},
		}
		for _, f := range s.Mapping.Fields {
			spec.Mapping.Fields = append(spec.Mapping.Fields, aggregator.FieldMap{From: f.From, Label: f.Label, Format: f.Format})
		}
		return spec, true
	}
	if cfg.Directory != nil {
		if spec, ok := build("directory", cfg.Directory); ok {
			ac.Directory = &spec
		}
	}
	for i := range cfg.Sources {
		s := &cfg.Sources[i]
		path := fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		if spec, ok := build(path, s); ok {
			ac.Sources = append(ac.Sources, spec)
		}
	}
	if len(errs) > 0 {
		return ac, errs
	}
	return ac, nil
}
