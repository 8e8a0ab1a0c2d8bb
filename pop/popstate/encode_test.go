package popstate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// checkEncoding checks that every message of out encodes as json.Marshal
// does, with one Encoder for the output as the dispatcher has (the
// audiences of a message share their sections' bytes).
func checkEncoding(t *testing.T, where string, out Output) {
	t.Helper()
	var e Encoder
	for _, d := range out.Deliveries {
		sameAsMarshal(t, where, &e, d.Msg)
	}
}

// sameAsMarshal checks that e and AppendMessage write m as json.Marshal
// does, byte for byte, and fail where it fails.
func sameAsMarshal(t *testing.T, where string, e *Encoder, m Message) {
	t.Helper()
	want, wantErr := json.Marshal(m)
	got, err := e.Marshal(m)
	if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
		t.Fatalf("%s: %s message\nEncoder:      %s (%v)\njson.Marshal: %s (%v)", where, m.Type, got, err, want, wantErr)
	}
	got, err = AppendMessage([]byte("x"), m)
	if (err != nil) != (wantErr != nil) || (err == nil && !bytes.Equal(got, append([]byte("x"), want...))) {
		t.Fatalf("%s: %s message\nAppendMessage: %s (%v)\njson.Marshal:  %s (%v)", where, m.Type, got, err, want, wantErr)
	}
}

var encodeAt = time.Date(2026, 3, 4, 10, 15, 2, 123456789, time.FixedZone("CET", 3600))

// richCard holds every field of a card, with values of every type a
// source's answer decodes to and strings JSON escapes.
func richCard() screenpop.Card {
	n := 7
	return screenpop.Card{
		CallID: "pbx/1700000000.42", Caller: screenpop.Caller{Number: "+4930123456", Name: "ACME <Logistics> & Söhne"},
		Phone: "+4930123456", PhoneDisplay: "030 123456", Resolution: screenpop.ResolvedAmbiguous,
		Customer: &screenpop.Customer{ID: "C-1", Name: "Łukasz \"Łuki\" Żółć", Kind: "company", Contact: "Jan\tKowalski", Role: "CFO",
			Email: "jan@example.com", City: "Kraków", Country: "PL", Tags: []string{"vip", "supplier\u2028x"}},
		Line:       &screenpop.Line{Number: "+493090182000", Label: "Support DE", Display: "030 90182000"},
		Candidates: []screenpop.Customer{{ID: "C-1", Name: "One"}, {ID: "C-2", Name: "", Tags: []string{}}},
		Links: []screenpop.CardLink{
			{Label: "CRM", Labels: map[string]string{"pl": "CRM (pl)", "de": "CRM <de>"}, URL: "https://crm.example.com/c/C-1?a=1&b=2", OpenOnAnswer: true},
			{Label: "ERP", URL: "https://erp.example.com/", Roles: []string{"credit"}},
		},
		Sections: []screenpop.CardSection{
			{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK, TookMS: 12, Cached: true, CachedAt: encodeAt.Add(-time.Minute),
				Fields: []screenpop.Field{
					{Key: "balance", Label: "Balance", Value: json.Number("1234.50"), Format: "money"},
					{Key: "empty", Label: "Empty number", Value: json.Number("")},
					{Key: "f", Label: "Float", Value: 0.1},
					{Key: "tiny", Label: "Tiny", Value: 1e-7},
					{Key: "huge", Label: "Huge", Value: -1.5e21},
					{Key: "big", Label: "Big", Value: 1e20},
					{Key: "i", Label: "Int", Value: int64(-42)},
					{Key: "u", Label: "Uint", Value: uint8(200)},
					{Key: "b", Label: "Bool", Value: true},
					{Key: "nil", Label: "Nothing", Value: nil},
					{Key: "t", Label: "Time", Value: encodeAt},
					{Key: "arr", Label: "Array", Value: []any{"a", json.Number("1"), nil, map[string]any{"z": 1.0, "a": []any{}}}},
					{Key: "nilarr", Label: "Nil array", Value: []any(nil)},
					{Key: "obj", Label: "Object", Value: map[string]any{"b": "x", "a": "<y>", "\u00e9": false}},
					{Key: "other", Label: "Other", Value: []string{"through", "json.Marshal"}},
					{Key: "ctl", Label: "Control \x01\x1f\b\f\n\r\t\\ \x7f", Value: "bad \xff utf-8 \u2029"},
				}},
			{Name: "sales", Title: "Sales", Status: screenpop.SectionOK, TookMS: 3,
				Lists: []screenpop.List{
					{Key: "orders", Label: "Recent orders", Columns: []screenpop.Column{{Key: "date", Label: "Date", Format: "date"}, {Key: "amount", Label: "Amount"}},
						Rows: []map[string]any{{"date": "2026-01-02", "amount": json.Number("19.99")}, nil, {}}, Truncated: true},
					{Key: "none", Label: "Nothing"},
				}},
			{Name: "credit", Title: "Credit", Status: screenpop.SectionTimeout, Error: "credit did not answer within 500ms", TookMS: 500, Roles: []string{"credit", "supervisor"}},
			{Name: "tickets", Title: "Tickets", Status: screenpop.SectionLoading},
		},
		Incomplete: []string{"directory"},
		History: []screenpop.PastCall{
			{CallID: "old-1", Phone: "+4930123456", At: encodeAt.Add(-time.Hour), Agent: "1001", Outcome: screenpop.OutcomeAnswered, Duration: 95 * time.Second,
				Notes:      []screenpop.Note{{Agent: "1001", At: encodeAt, Text: "call back <tomorrow>", ID: "n1", AgentName: "Alice", EditedAt: encodeAt, EditedBy: "1002"}, {Agent: "1002", At: encodeAt, Text: ""}},
				CustomerID: "C-1", DID: "+493090182000", AgentName: "Alice", Disposition: "sale", DispositionLabel: "Sale"},
			{CallID: "old-2", At: time.Time{}, Outcome: screenpop.OutcomeAbandoned},
		},
		CallsLast30Days: &n,
		HistoryLoading:  true,
		BuiltAt:         encodeAt,
		TookMS:          17,
	}
}

// Every message type, rich and bare, encodes as json.Marshal does.
func TestEncoderSameAsMarshal(t *testing.T) {
	rich := richCard()
	zero := 0
	var e Encoder
	for i, m := range []Message{
		{Type: TypePop, Seq: 17, CallID: "c1", At: encodeAt, Data: PopData{State: StateRinging, Card: rich, Transfer: &TransferInfo{From: AgentRef{ID: "a", Name: "Alice"}, Consult: true}}},
		{Type: TypePop, CallID: "c1", At: encodeAt, Data: PopData{State: StateAnswered, Card: rich, AnsweredBy: &AgentRef{ID: "b"}}},
		{Type: TypePop, At: encodeAt, Data: PopData{}},
		{Type: TypeCard, CallID: "c1", At: encodeAt, Data: CardData{Card: rich, SelectedBy: AgentRef{ID: "b", Name: "Bob"}}},
		{Type: TypeCard, CallID: "c1", At: encodeAt, Data: CardData{Card: screenpop.Card{Sections: []screenpop.CardSection{}}}},
		{Type: TypeSection, CallID: "c1", At: encodeAt, Data: SectionData{Section: rich.Sections[0]}},
		{Type: TypeSection, CallID: "c1", At: encodeAt, Data: SectionData{Section: rich.Sections[1]}},
		{Type: TypeSection, CallID: "c1", At: encodeAt, Data: SectionData{}},
		{Type: TypeHistory, CallID: "c1", At: encodeAt, Data: HistoryData{History: rich.History, CallsLast30Days: &zero}},
		{Type: TypeHistory, CallID: "c1", At: encodeAt, Data: HistoryData{History: []screenpop.PastCall{}}},
		{Type: TypeHistory, CallID: "c1", At: encodeAt, Data: HistoryData{}},
		{Type: TypeWithdrawn, CallID: "c1", At: encodeAt, Data: WithdrawnData{Reason: ReasonAnsweredElsewhere, By: &AgentRef{ID: "b"}}},
		{Type: TypeWithdrawn, CallID: "c1", At: encodeAt, Data: WithdrawnData{Reason: ReasonRangOut}},
		{Type: TypeEnded, CallID: "c1", At: encodeAt, Data: EndedData{Outcome: screenpop.OutcomeAnswered}},
		{Type: TypeEnded, CallID: "c1", At: encodeAt, Data: EndedData{Outcome: screenpop.OutcomeAnswered, Agent: &AgentRef{ID: "a", Name: "Al & <Al>"}}},
		{Type: TypeAnswered, CallID: "c1", At: encodeAt, Data: AnsweredData{Agent: AgentRef{ID: "a"}, Transferred: true}},
		{Type: TypeNoteSaved, CallID: "c1", At: encodeAt, Data: NoteSavedData{Note: screenpop.Note{Agent: "a", Text: "x"}, Ref: "r1"}},
		{Type: TypeAnswered, CallID: "c1", At: encodeAt, Data: &AnsweredData{Agent: AgentRef{ID: "a"}}},
		{Type: TypeNoteSaved, At: encodeAt, Data: (*NoteSavedData)(nil)},
		{Type: "x<y>", At: time.Time{}},
	} {
		e.Reset()
		sameAsMarshal(t, "message "+string(rune('a'+i)), &e, m)
		sameAsMarshal(t, "message "+string(rune('a'+i))+" again", &e, m) // its sections remembered
	}
}

// What JSON cannot hold fails as in json.Marshal, and the Encoder goes on.
func TestEncoderRefusesWhatJSONCannotHold(t *testing.T) {
	var e Encoder
	for _, v := range []any{math.NaN(), math.Inf(-1), json.Number("1e"), json.Number("x"), map[string]any{"a": []any{math.Inf(1)}},
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), func() {}} {
		card := screenpop.Card{Sections: []screenpop.CardSection{{Name: "s", Fields: []screenpop.Field{{Key: "k", Value: v}}}}}
		sameAsMarshal(t, "bad value", &e, Message{Type: TypePop, At: encodeAt, Data: PopData{Card: card}})
	}
	sameAsMarshal(t, "bad time", &e, Message{Type: TypeEnded, At: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)})
	sameAsMarshal(t, "after", &e, Message{Type: TypePop, At: encodeAt, Data: PopData{Card: richCard()}})
}

// A section remembered is written again from its bytes; a section that
// looks the same but is another value is written anew; Reset forgets.
func TestEncoderRemembersSections(t *testing.T) {
	card := richCard()
	var e Encoder
	first, err := e.Marshal(Message{Type: TypeSection, At: encodeAt, Data: SectionData{Section: card.Sections[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.sections) != 1 {
		t.Fatalf("%d sections remembered, want 1", len(e.sections))
	}
	// The same value, in a card for another audience: the bytes of the
	// first message.
	second, err := e.Marshal(Message{Type: TypePop, At: encodeAt, Data: PopData{Card: screenpop.Card{Sections: card.Sections[:1]}}})
	if err != nil {
		t.Fatal(err)
	}
	raw := e.sections[0].raw
	if !bytes.Contains(first, raw) || !bytes.Contains(second, raw) {
		t.Fatalf("remembered %s", raw)
	}
	// Changed fields in a new array: written anew.
	s := card.Sections[0]
	s.Fields = append([]screenpop.Field(nil), s.Fields...)
	s.Fields[0].Value = json.Number("1")
	sameAsMarshal(t, "changed section", &e, Message{Type: TypeSection, At: encodeAt, Data: SectionData{Section: s}})
	if len(e.sections) != 2 {
		t.Errorf("%d sections remembered, want 2", len(e.sections))
	}
	e.Reset()
	if len(e.sections) != 0 {
		t.Errorf("%d sections remembered after Reset", len(e.sections))
	}

	// Earlier calls: remembered for the card's next audience, written
	// anew for another card's, however alike.
	other := card
	other.History = append([]screenpop.PastCall(nil), card.History...)
	other.History[0].Agent = "someone else"
	for i, c := range []screenpop.Card{card, card, other, card} {
		sameAsMarshal(t, fmt.Sprintf("history %d", i), &e, Message{Type: TypePop, At: encodeAt, Data: PopData{Card: c}})
	}
	sameAsMarshal(t, "history message", &e, Message{Type: TypeHistory, At: encodeAt, Data: HistoryData{History: other.History}})
	if e.history.first != &other.History[0] || e.historyRaw == nil {
		t.Errorf("the earlier calls remembered are not the last card's")
	}
}

// FuzzEncoder checks the Encoder against json.Marshal on cards made of
// what the fuzzer gives: strings anywhere a card has one, numbers of
// every kind in fields and lists.
//
//	go test -run '^$' -fuzz FuzzEncoder -fuzztime 30s ./pop/popstate/
func FuzzEncoder(f *testing.F) {
	f.Add("ACME", "+4930123456", "balance", "1234.5", 1234.5, int64(7), true, int64(0))
	f.Add("<&>\"\\\x00\x1f\u2028\u2029\xff", "", "", "", math.SmallestNonzeroFloat64, int64(-1), false, int64(-62135596800))
	f.Add("Żółć", "x", "k\n", "-0.0e+12", -1e-7, int64(math.MaxInt64), false, int64(253402300799))
	f.Add("", "", "", "01", 1e21, int64(math.MinInt64), true, int64(1))
	f.Fuzz(func(t *testing.T, s1, s2, s3, num string, fl float64, i int64, flag bool, sec int64) {
		at := time.Unix(sec, i%1e9)
		card := screenpop.Card{
			CallID: s1, Caller: screenpop.Caller{Number: s2, Name: s3, Withheld: flag}, Phone: s2, Resolution: screenpop.Resolution(s3),
			Customer: &screenpop.Customer{ID: s1, Name: s2, City: s3, Tags: []string{s1, s2}},
			Links:    []screenpop.CardLink{{Label: s1, Labels: map[string]string{s2: s3, s3: s1}, URL: s2}},
			Sections: []screenpop.CardSection{{Name: s1, Title: s2, Status: screenpop.SectionStatus(s3), Error: s3, TookMS: i, Cached: flag, CachedAt: at,
				Fields: []screenpop.Field{{Key: s1, Label: s2, Value: json.Number(num), Format: s3}, {Key: s2, Value: fl}, {Key: s3, Value: i},
					{Key: "u", Value: uint64(i)}, {Key: "s", Value: s3}, {Key: "t", Value: at}, {Key: "m", Value: map[string]any{s1: fl, s2: []any{num, flag}}}},
				Lists: []screenpop.List{{Key: s1, Label: s2, Columns: []screenpop.Column{{Key: s3}}, Rows: []map[string]any{{s1: json.Number(num), s3: s2}}}}}},
			History: []screenpop.PastCall{{CallID: s1, Phone: s2, At: at, Outcome: screenpop.Outcome(s3), Duration: time.Duration(i), Notes: []screenpop.Note{{Agent: s1, Text: s3, At: at}}}},
			BuiltAt: at, TookMS: i,
		}
		var e Encoder
		m := Message{Type: s1, Seq: uint64(i), CallID: s2, At: at, Data: PopData{State: s3, Card: card}}
		sameAsMarshal(t, "fuzz", &e, m)
		sameAsMarshal(t, "fuzz again", &e, m)
		sameAsMarshal(t, "fuzz section", &e, Message{Type: TypeSection, At: at, Data: SectionData{Section: card.Sections[0]}})
	})
}
