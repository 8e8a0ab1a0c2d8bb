package main

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// The daemon restarts while a call rings; the PBX (http intake) goes on
// with the call's answered, naming no caller, as a PBX posts it. The new
// daemon never saw the ring: the agent's card is an unknown caller with
// no number, not a caller who withheld it. An answered that names the
// caller again (the README asks PBXes to) gets the customer's card, in
// place of the unknown one on a call already popped.
func TestCallAnsweredAfterARestart(t *testing.T) {
	env := map[string]string{"SECRET": strings.Repeat("s", 40), "CTI": historyCTIToken}
	start := func() (*Main, context.CancelFunc, chan error) {
		cfg := daemonConfig(t, "", `[{name: cti, type: http, tokens_env: CTI}]`)
		m, err := NewMain(cfg, Options{Env: func(k string) string { return env[k] }, Stderr: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		waitReady(t, "http://"+m.Addr().String())
		return m, cancel, done
	}

	before, stop, done := start()
	postEvents(t, before, ringEvent("k-1", "030 1234567", "1001"))
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	before.Close()

	after, stop, done := start()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		after.Close()
	})
	alice := dialAgent(t, after, "1001")
	nextOfAny(t, alice, "", pop.TypeHello)

	postEvents(t, after, map[string]any{"event": "answered", "call_id": "k-1", "agent": "1001"})
	card := popCard(t, nextOf(t, alice, "cti/k-1", pop.TypePop))
	if card.Resolution != screenpop.ResolvedUnknown || card.Caller != (screenpop.Caller{}) || card.Phone != "" || card.Customer != nil {
		t.Errorf("card of the call rung before the restart: resolution %q, caller %+v, phone %q, customer %+v; want an unknown caller with no number",
			card.Resolution, card.Caller, card.Phone, card.Customer)
	}

	// The PBX names the caller on a later event of that call: the card is
	// built again for them, and the agent gets it in place of the unknown one.
	postEvents(t, after, map[string]any{"event": "answered", "call_id": "k-1", "agent": "1001", "caller": map[string]any{"number": "030 1234567"}})
	msg := nextOf(t, alice, "cti/k-1", pop.TypeCard)
	var named pop.CardData
	if err := json.Unmarshal(msg.Data, &named); err != nil {
		t.Fatal(err)
	}
	if c := named.Card; c.Resolution != screenpop.ResolvedCustomer || c.Customer == nil || c.Customer.ID != "C-10001" {
		t.Errorf("card once the caller is named: resolution %q, customer %+v; want customer C-10001", c.Resolution, c.Customer)
	}

	postEvents(t, after, map[string]any{"event": "answered", "call_id": "k-2", "agent": "1001", "caller": map[string]any{"number": "030 1234567"}})
	card = popCard(t, nextOf(t, alice, "cti/k-2", pop.TypePop))
	if card.Resolution != screenpop.ResolvedCustomer || card.Customer == nil || card.Customer.ID != "C-10001" || card.Caller.Withheld {
		t.Errorf("card of an answered naming its caller: resolution %q, customer %+v, caller %+v; want customer C-10001",
			card.Resolution, card.Customer, card.Caller)
	}
}
