package main

import (
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/bearer"
	"github.com/screenpop/screenpop/configs"
)

// distinctAPITokens refuses a bearer token that opens two HTTP APIs: the
// call events of an http telephony source (tokens_env) and the eviction
// API (api.evict_tokens_env) each take their own, so that the holder of
// one (a CRM that evicts) cannot do what the other may (post calls that
// pop cards at agents), and one can be revoked without the other. Each
// token kind is read from its own variable, as the wiring reads it; the
// tokens never appear in the error.
func distinctAPITokens(cfg *configs.Config, env func(string) string) configs.Errors {
	// kind is the API; what names the user of the token in the error.
	type use struct{ path, kind, what string }
	seen := map[string]use{}
	var errs configs.Errors
	add := func(u use, variable string) {
		if variable == "" {
			return
		}
		for i, tok := range bearer.SplitList(env(variable)) {
			if first, ok := seen[tok]; ok && first.kind != u.kind {
				errs = append(errs, cfg.ErrorAt(u.path, fmt.Sprintf("token %d of %s is also a token of %s", i+1, variable, first.what),
					"give each API its own tokens (e.g. openssl rand -hex 24)"))
				continue
			}
			if _, ok := seen[tok]; !ok {
				seen[tok] = u
			}
		}
	}
	for i, t := range cfg.Telephony {
		if t.Type == "http" {
			add(use{fmt.Sprintf("telephony[%d].tokens_env", i), "call-events", "the call-event API (telephony " + t.Name + ")"}, optionValue(t.Options, "tokens_env"))
		}
	}
	add(use{"api.evict_tokens_env", "evict", "the eviction API"}, cfg.API.EvictTokensEnv)
	return errs
}

// optionValue is the text of a scalar option of a kind, "" when it is
// not written.
func optionValue(options *yaml.Node, key string) string {
	if options == nil || options.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(options.Content); i += 2 {
		if k, v := options.Content[i], options.Content[i+1]; k.Value == key && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}
