// Package telephony holds what every telephony source shares: how a PBX
// endpoint ("PJSIP/1001") maps to the agent who sits at it.
package telephony

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// DefaultAgentPattern is what an agent ID must look like unless
// AgentMapConfig.AgentPattern says otherwise: an extension number.
const DefaultAgentPattern = `^[0-9]{2,6}$`

// agentPlaceholder marks, in a pattern, where the agent ID sits.
const agentPlaceholder = "{agent}"

// AgentMapConfig says which PBX endpoints belong to which agents.
type AgentMapConfig struct {
	// Patterns are endpoint shapes with one {agent} placeholder, tried in
	// order: "PJSIP/{agent}", "SIP/{agent}", "Local/{agent}@agents". The text
	// around the placeholder must match exactly (case-sensitive, as Asterisk
	// names endpoints), and what the placeholder covers must match
	// AgentPattern, so "PJSIP/carrier" is not mistaken for an agent.
	Patterns []string
	// Table maps exact endpoints to agent IDs and wins over Patterns: for
	// phones whose endpoint name is not the agent's ID ("PJSIP/reception" ->
	// "100"), or to claim an endpoint a pattern would miss.
	Table map[string]string
	// AgentPattern is a regular expression every agent ID (from a pattern or
	// from Table) must match; default DefaultAgentPattern.
	AgentPattern string
}

// AgentMap answers "whose phone is this endpoint?". It is immutable after
// NewAgentMap and safe for concurrent use.
type AgentMap struct {
	patterns []agentPattern
	table    map[string]string
	valid    *regexp.Regexp
}

type agentPattern struct {
	prefix, suffix string
}

// AgentMapProblem is one thing wrong with an AgentMapConfig: the option at
// fault as a configuration file writes it under `agents:` ("patterns[1]",
// `table["PJSIP/reception"]`, "agent_pattern"), what is wrong and how to
// fix it. configs reports each at its option's line and column.
type AgentMapProblem struct {
	Path string
	Msg  string
	Fix  string
}

func (p AgentMapProblem) Error() string {
	return "agent map: " + p.Path + ": " + p.Msg + " (fix: " + p.Fix + ")"
}

// Problems checks cfg and returns every problem, in a stable order: the
// one set of rules for the endpoint mapping, which NewAgentMap applies and
// configs reports at the lines they are about.
func (cfg AgentMapConfig) Problems() []AgentMapProblem {
	var probs []AgentMapProblem
	add := func(path, fix, format string, args ...any) {
		probs = append(probs, AgentMapProblem{Path: path, Msg: fmt.Sprintf(format, args...), Fix: fix})
	}
	expr := cmp.Or(cfg.AgentPattern, DefaultAgentPattern)
	valid, err := regexp.Compile(expr)
	if err != nil {
		add("agent_pattern", "write a Go regular expression, e.g. "+DefaultAgentPattern, "%q: %v", expr, err)
	}
	const patternFix = `e.g. "PJSIP/{agent}" or "Local/{agent}@agents"`
	for i, p := range cfg.Patterns {
		path := fmt.Sprintf("patterns[%d]", i)
		if n := strings.Count(p, agentPlaceholder); n != 1 {
			add(path, patternFix, "%q must contain %s exactly once (it has %d)", p, agentPlaceholder, n)
			continue
		}
		if prefix, _, _ := strings.Cut(p, agentPlaceholder); !strings.Contains(prefix, "/") {
			// Without the technology the pattern would match any channel
			// driver's endpoint, trunks included.
			add(path, patternFix, "%q must start with a technology such as PJSIP/: without it a trunk's endpoint could pass for an agent's phone", p)
		}
	}
	for _, ep := range slices.Sorted(maps.Keys(cfg.Table)) {
		path := fmt.Sprintf("table[%q]", ep)
		agent := cfg.Table[ep]
		switch {
		case !strings.Contains(ep, "/") || strings.HasPrefix(ep, "/") || strings.HasSuffix(ep, "/"):
			add(path, `write the endpoint as Asterisk names it, e.g. "PJSIP/reception": "100"`, "endpoint %q must look like TECH/resource", ep)
		case valid != nil && !valid.MatchString(agent):
			add(path, "an agent ID such as 1001", "agent %q does not match %s", agent, expr)
		}
	}
	return probs
}

// NewAgentMap checks cfg (Problems) and builds the map. Its error joins
// every problem, each an AgentMapProblem.
func NewAgentMap(cfg AgentMapConfig) (*AgentMap, error) {
	if probs := cfg.Problems(); len(probs) > 0 {
		errs := make([]error, len(probs))
		for i, p := range probs {
			errs[i] = p
		}
		return nil, errors.Join(errs...)
	}
	m := &AgentMap{
		valid: regexp.MustCompile(cmp.Or(cfg.AgentPattern, DefaultAgentPattern)), // Problems compiled it
		table: maps.Clone(cfg.Table),
	}
	for _, p := range cfg.Patterns {
		prefix, suffix, _ := strings.Cut(p, agentPlaceholder)
		m.patterns = append(m.patterns, agentPattern{prefix: prefix, suffix: suffix})
	}
	return m, nil
}

// AgentOf returns the agent whose phone endpoint is ("PJSIP/1001" ->
// "1001"), or false for trunks, unknown phones and anything else.
func (m *AgentMap) AgentOf(endpoint string) (string, bool) {
	if agent, ok := m.table[endpoint]; ok {
		return agent, true
	}
	for _, p := range m.patterns {
		if len(endpoint) < len(p.prefix)+len(p.suffix) ||
			!strings.HasPrefix(endpoint, p.prefix) || !strings.HasSuffix(endpoint, p.suffix) {
			continue
		}
		agent := endpoint[len(p.prefix) : len(endpoint)-len(p.suffix)]
		if agent != "" && m.valid.MatchString(agent) {
			return agent, true
		}
	}
	return "", false
}

// EndpointOfChannel strips what Asterisk appends to an endpoint to name one
// channel on it: the hexadecimal sequence after the last '-' and, for Local
// channels, the ";1"/";2" half marker.
//
//	"PJSIP/1001-00000002"          -> "PJSIP/1001"
//	"PJSIP/carrier-eu-0000000a"    -> "PJSIP/carrier-eu"
//	"Local/1001@agents-0000001a;2" -> "Local/1001@agents"
//
// A name without such a suffix is returned unchanged.
func EndpointOfChannel(channelName string) string {
	name := channelName
	if strings.HasPrefix(name, "Local/") {
		if i := strings.LastIndexByte(name, ';'); i > 0 {
			name = name[:i]
		}
	}
	i := strings.LastIndexByte(name, '-')
	if i <= strings.IndexByte(name, '/') || i == len(name)-1 {
		return name
	}
	for _, r := range name[i+1:] {
		if !isHex(r) {
			return name
		}
	}
	return name[:i]
}

func isHex(r rune) bool {
	return (r >= '0' && r <= '9') || (r >= 'a' && r <= 'f') || (r >= 'A' && r <= 'F')
}
