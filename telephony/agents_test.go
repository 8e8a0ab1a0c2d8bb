package telephony

import (
	"errors"
	"strings"
	"testing"
)

func TestEndpointOfChannel(t *testing.T) {
	cases := map[string]string{
		"PJSIP/1001-00000002":           "PJSIP/1001",
		"PJSIP/carrier-00000000":        "PJSIP/carrier",
		"PJSIP/carrier-eu-0000000a":     "PJSIP/carrier-eu",
		"SIP/1001-0000abcd":             "SIP/1001",
		"Local/1001@agents-0000001a;2":  "Local/1001@agents",
		"Local/1001@agents-0000001a;1":  "Local/1001@agents",
		"Local/sales-team@q-00000003;1": "Local/sales-team@q",
		"PJSIP/1001":                    "PJSIP/1001",       // already an endpoint
		"PJSIP/carrier-eu":              "PJSIP/carrier-eu", // "eu" is not a sequence
		"PJSIP/1001-":                   "PJSIP/1001-",
		"Message/ast_msg_queue":         "Message/ast_msg_queue",
		"":                              "",
	}
	for in, want := range cases {
		if got := EndpointOfChannel(in); got != want {
			t.Errorf("EndpointOfChannel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAgentOf(t *testing.T) {
	m, err := NewAgentMap(AgentMapConfig{
		Patterns: []string{"PJSIP/{agent}", "SIP/{agent}", "Local/{agent}@agents"},
		Table:    map[string]string{"PJSIP/reception": "100", "PJSIP/1009": "1010"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		endpoint, agent string
		ok              bool
	}{
		{"PJSIP/1001", "1001", true},
		{"SIP/2002", "2002", true},
		{"Local/1003@agents", "1003", true},
		{"PJSIP/reception", "100", true},
		{"PJSIP/1009", "1010", true}, // the table wins over the pattern
		{"PJSIP/carrier", "", false}, // a trunk: not an agent ID
		{"Local/1003@queues", "", false},
		{"Local/1003@agents-x", "", false},
		{"IAX2/1001", "", false},
		{"PJSIP/1", "", false},       // too short for the default pattern
		{"PJSIP/1234567", "", false}, // too long
		{"PJSIP/", "", false},
		{"pjsip/1001", "", false}, // Asterisk names are case-sensitive
	}
	for _, c := range cases {
		agent, ok := m.AgentOf(c.endpoint)
		if agent != c.agent || ok != c.ok {
			t.Errorf("AgentOf(%q) = %q, %v; want %q, %v", c.endpoint, agent, ok, c.agent, c.ok)
		}
	}
}

func TestAgentOfCustomPattern(t *testing.T) {
	m, err := NewAgentMap(AgentMapConfig{Patterns: []string{"PJSIP/agent-{agent}"}, AgentPattern: `^[a-z]+$`})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.AgentOf("PJSIP/agent-alice"); !ok || a != "alice" {
		t.Errorf("AgentOf(PJSIP/agent-alice) = %q, %v", a, ok)
	}
	if a, ok := m.AgentOf("PJSIP/agent-1001"); ok {
		t.Errorf("AgentOf(PJSIP/agent-1001) = %q, want no agent (pattern is letters only)", a)
	}
}

func TestAgentMapEmptyMatchesNothing(t *testing.T) {
	m, err := NewAgentMap(AgentMapConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.AgentOf("PJSIP/1001"); ok {
		t.Errorf("empty map: AgentOf = %q, want none", a)
	}
}

func TestNewAgentMapErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  AgentMapConfig
		want []string
	}{
		{"no placeholder", AgentMapConfig{Patterns: []string{"PJSIP/1001"}}, []string{`agent map: patterns[0]: "PJSIP/1001" must contain {agent} exactly once (it has 0) (fix: e.g. "PJSIP/{agent}" or "Local/{agent}@agents")`}},
		{"two placeholders", AgentMapConfig{Patterns: []string{"PJSIP/ok-{agent}", "PJSIP/{agent}-{agent}"}}, []string{`patterns[1]: "PJSIP/{agent}-{agent}" must contain {agent} exactly once (it has 2)`}},
		{"no technology", AgentMapConfig{Patterns: []string{"{agent}"}}, []string{`patterns[0]: "{agent}" must start with a technology such as PJSIP/`}},
		{"bad regexp", AgentMapConfig{AgentPattern: "(["}, []string{`agent_pattern: "(["`}},
		{"bad table endpoint", AgentMapConfig{Table: map[string]string{"1001": "1001"}}, []string{`table["1001"]: endpoint "1001" must look like TECH/resource`}},
		{"bad table agent", AgentMapConfig{Table: map[string]string{"PJSIP/reception": "front desk"}}, []string{`table["PJSIP/reception"]: agent "front desk" does not match ^[0-9]{2,6}$`}},
		{"all errors at once", AgentMapConfig{
			Patterns: []string{"PJSIP/x"},
			Table:    map[string]string{"PJSIP/a": "", "b": "12"},
		}, []string{`patterns[0]`, `table["PJSIP/a"]`, `table["b"]`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := NewAgentMap(c.cfg)
			if err == nil {
				t.Fatalf("NewAgentMap = %v, want error", m)
			}
			// Each problem keeps its path, for configs to place it.
			if probs := c.cfg.Problems(); len(probs) != len(c.want) || !errors.As(err, new(AgentMapProblem)) {
				t.Errorf("Problems() = %v, want %d problem(s) behind the error", probs, len(c.want))
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
