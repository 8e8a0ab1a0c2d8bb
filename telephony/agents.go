// Package telephony holds what every telephony source shares: how a PBX
// endpoint ("PJSIP/1001") maps to the agent who sits at it.
package telephony

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
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

// NewAgentMap validates cfg. Errors name the offending pattern or entry.
func NewAgentMap(cfg AgentMapConfig) (*AgentMap, error) {
	expr := cfg.AgentPattern
	if expr == "" {
		expr = DefaultAgentPattern
	}
	valid, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("agent map: agent_pattern %q: %w", expr, err)
	}
	m := &AgentMap{valid: valid, table: make(map[string]string, len(cfg.Table))}
	var errs []error
	for i, p := range cfg.Patterns {
		n := strings.Count(p, agentPlaceholder)
		if n != 1 {
			errs = append(errs, fmt.Errorf("agent map: patterns[%d] %q: needs exactly one %s, has %d", i, p, agentPlaceholder, n))
			continue
		}
		prefix, suffix, _ := strings.Cut(p, agentPlaceholder)
		if !strings.Contains(prefix, "/") {
			// Without the technology the pattern would match any channel
			// driver's endpoint, trunks included.
			errs = append(errs, fmt.Errorf("agent map: patterns[%d] %q: must start with a technology such as PJSIP/", i, p))
			continue
		}
		m.patterns = append(m.patterns, agentPattern{prefix: prefix, suffix: suffix})
	}
	endpoints := make([]string, 0, len(cfg.Table))
	for ep := range cfg.Table {
		endpoints = append(endpoints, ep)
	}
	sort.Strings(endpoints) // errors in a stable order
	for _, ep := range endpoints {
		agent := cfg.Table[ep]
		switch {
		case !strings.Contains(ep, "/") || strings.HasPrefix(ep, "/") || strings.HasSuffix(ep, "/"):
			errs = append(errs, fmt.Errorf("agent map: table[%q]: endpoint must look like TECH/resource", ep))
		case !valid.MatchString(agent):
			errs = append(errs, fmt.Errorf("agent map: table[%q]: agent %q does not match %s", ep, agent, expr))
		default:
			m.table[ep] = agent
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
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
