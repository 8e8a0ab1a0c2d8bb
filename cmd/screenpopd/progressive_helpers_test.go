package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// completeCard is the card of first (a pop) once complete, as the page
// shows it: a pop sent before every source answered is filled in by the
// section and history messages that follow it, and replaced by the card
// message that completes it (pop/README.md, "A card in steps").
func completeCard(t *testing.T, c *websocket.Conn, first envelope) screenpop.Card {
	t.Helper()
	var p pop.PopData
	if err := json.Unmarshal(first.Data, &p); err != nil {
		t.Fatalf("pop data: %v\n%s", err, first.Data)
	}
	card := p.Card
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for building(card) {
		var env envelope
		if err := c.ReadJSON(&env); err != nil {
			t.Fatalf("the card of %s was not completed before the read failed: %v", first.CallID, err)
		}
		if env.CallID != first.CallID {
			continue
		}
		switch env.Type {
		case pop.TypeSection:
			var d pop.SectionData
			if err := json.Unmarshal(env.Data, &d); err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(card.Sections, func(s screenpop.CardSection) bool { return s.Name == d.Section.Name }); i >= 0 {
				card.Sections[i] = d.Section
			}
		case pop.TypeHistory:
			var d pop.HistoryData
			if err := json.Unmarshal(env.Data, &d); err != nil {
				t.Fatal(err)
			}
			card.History, card.CallsLast30Days, card.HistoryLoading = d.History, d.CallsLast30Days, false
		case pop.TypeCard:
			var d pop.CardData
			if err := json.Unmarshal(env.Data, &d); err != nil {
				t.Fatal(err)
			}
			card = d.Card
		case pop.TypeEnded, pop.TypeWithdrawn:
			t.Fatalf("%s of %s before its card was complete", env.Type, first.CallID)
		}
	}
	return card
}

// building reports whether a card was sent before it was complete and is
// not complete yet.
func building(c screenpop.Card) bool {
	return c.HistoryLoading || slices.ContainsFunc(c.Sections, func(s screenpop.CardSection) bool { return s.Status == screenpop.SectionLoading })
}

// completePop is the data of the pop first with its card complete
// (completeCard), for a test that reads a pop's card.
func completePop(t *testing.T, c *websocket.Conn, first envelope) json.RawMessage {
	t.Helper()
	var p pop.PopData
	if err := json.Unmarshal(first.Data, &p); err != nil {
		t.Fatalf("pop data: %v\n%s", err, first.Data)
	}
	p.Card = completeCard(t, c, first)
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
