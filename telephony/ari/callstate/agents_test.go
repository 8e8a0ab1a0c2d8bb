package callstate

import (
	"fmt"
	"testing"
)

// AgentOf is asked once per endpoint, not once per channel: a pattern's
// regular expression does not run for every channel of every call. The
// cache stays bounded whatever names the PBX sends.
func TestAgentOfCachedByEndpoint(t *testing.T) {
	cfg := showConfig(t)
	agents := cfg.AgentOf
	asked := map[string]int{}
	cfg.AgentOf = func(ep string) (string, bool) {
		asked[ep]++
		return agents(ep)
	}
	res := replay(t, "../testdata/answered.jsonl", cfg)
	if len(res.events) == 0 {
		t.Fatal("no call event")
	}
	if len(asked) == 0 {
		t.Fatal("AgentOf never asked")
	}
	for ep, n := range asked {
		if n != 1 {
			t.Errorf("AgentOf(%q) asked %d times", ep, n)
		}
	}
	// Another channel on a known endpoint: answered from the cache.
	tr := res.tracker
	clear(asked)
	if got := tr.endpointAgent("PJSIP/1002-000000ff"); got != "1002" {
		t.Errorf("cached agent of PJSIP/1002: %q", got)
	}
	if got := tr.endpointAgent("PJSIP/carrier-000000ff"); got != "" {
		t.Errorf("cached agent of the trunk: %q", got)
	}
	if len(asked) != 0 {
		t.Errorf("AgentOf asked again: %v", asked)
	}

	for i := range 3 * maxCachedEndpoints {
		tr.endpointAgent(fmt.Sprintf("PJSIP/x%d-00000001", i))
		if len(tr.agents) > maxCachedEndpoints {
			t.Fatalf("%d endpoints cached, at most %d", len(tr.agents), maxCachedEndpoints)
		}
	}
}
