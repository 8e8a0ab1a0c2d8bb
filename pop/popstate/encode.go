package popstate

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	screenpop "github.com/screenpop/screenpop"
)

// Encoder writes messages as JSON, byte for byte what encoding/json's
// Marshal writes for them, without its reflection: the envelope, a card
// (pop, card), a section, earlier calls (section, history) and the data
// of answered, withdrawn and ended are appended field by field; any other
// data, and any value of a card's content of a type not written here,
// goes through json.Marshal.
//
// An Encoder remembers the bytes of every card section it wrote since its
// last Reset, by the section's identity (its scalar fields and the arrays
// its fields and lists live in), and of the last card's earlier calls (by
// their array), and writes them again from there: the audiences of one
// message, who share most sections and all the earlier calls, cost one
// encoding of each. What it remembers must not be modified until Reset
// (cards are shared, never modified). Not safe for concurrent use.
type Encoder struct {
	buf      []byte
	sections []writtenSection
	fresh    []freshSection // sections written into buf by the message under way
	// The earlier calls of a card written since the last Reset (its
	// audiences share them), by the array they live in, and their bytes;
	// and where the message under way wrote them into buf.
	history     historyKey
	historyRaw  []byte
	historyAt   [2]int
	historySeen bool
}

// historyKey is the identity of a card's earlier calls.
type historyKey struct {
	first *screenpop.PastCall
	n     int
}

// writtenSection is a section written since the last Reset, and its
// bytes. A card has a few sections: a list searched in order finds them
// sooner than a map.
type writtenSection struct {
	key sectionKey
	raw []byte
}

// maxWrittenSections bounds the sections an Encoder remembers.
const maxWrittenSections = 64

// sectionKey is a section's identity: equal keys, equal JSON.
type sectionKey struct {
	name, title string
	status      screenpop.SectionStatus
	err         string
	tookMS      int64
	cached      bool
	cachedAt    time.Time
	fields      *screenpop.Field
	nFields     int
	lists       *screenpop.List
	nLists      int
}

type freshSection struct {
	key        sectionKey
	start, end int
}

// maxKeptBuffer bounds the scratch buffer an Encoder keeps between
// messages: a rare huge card does not hold its memory for ever.
const maxKeptBuffer = 256 << 10

// Reset forgets the sections written so far.
func (e *Encoder) Reset() {
	clear(e.sections) // let the bytes go
	e.sections = e.sections[:0]
	e.history, e.historyRaw, e.historySeen = historyKey{}, nil, false
}

// Marshal returns m as JSON, what json.Marshal(m) returns, in a slice of
// its own of exactly that length.
func (e *Encoder) Marshal(m Message) ([]byte, error) {
	e.fresh, e.historySeen = e.fresh[:0], false
	b, err := e.appendMessage(e.buf[:0], m)
	if err != nil {
		// A value JSON cannot hold (NaN, a time past year 9999), or one
		// this encoder does not know how to judge: encoding/json says
		// what it makes of it.
		e.fresh = e.fresh[:0]
		if e.historySeen {
			e.history, e.historyRaw = historyKey{}, nil
		}
		return json.Marshal(m)
	}
	out := make([]byte, len(b))
	copy(out, b)
	if cap(b) <= maxKeptBuffer {
		e.buf = b[:0]
	} else {
		e.buf = nil
	}
	for _, f := range e.fresh {
		if len(e.sections) < maxWrittenSections {
			e.sections = append(e.sections, writtenSection{key: f.key, raw: out[f.start:f.end:f.end]})
		}
	}
	e.fresh = e.fresh[:0]
	if e.historySeen && e.historyRaw == nil {
		e.historyRaw = out[e.historyAt[0]:e.historyAt[1]:e.historyAt[1]]
	}
	return out, nil
}

// AppendMessage appends m as JSON to dst, what json.Marshal(m) returns.
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	var e Encoder
	b, err := e.appendMessage(dst, m)
	if err != nil {
		raw, err := json.Marshal(m)
		if err != nil {
			return dst, err
		}
		return append(dst, raw...), nil
	}
	return b, nil
}

func (e *Encoder) appendMessage(b []byte, m Message) ([]byte, error) {
	var err error
	b = append(b, `{"type":`...)
	b = appendString(b, m.Type)
	if m.Seq != 0 {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, m.Seq, 10)
	}
	if m.CallID != "" {
		b = append(b, `,"call_id":`...)
		b = appendString(b, m.CallID)
	}
	b = append(b, `,"at":`...)
	if b, err = appendTime(b, m.At); err != nil {
		return b, err
	}
	if m.Data != nil {
		b = append(b, `,"data":`...)
		if b, err = e.appendData(b, m.Data); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

func (e *Encoder) appendData(b []byte, data any) ([]byte, error) {
	var err error
	switch d := data.(type) {
	case PopData:
		b = append(b, `{"state":`...)
		b = appendString(b, d.State)
		b = append(b, `,"card":`...)
		if b, err = e.appendCard(b, &d.Card); err != nil {
			return b, err
		}
		if d.AnsweredBy != nil {
			b = append(b, `,"answered_by":`...)
			b = appendAgentRef(b, *d.AnsweredBy)
		}
		if d.Transfer != nil {
			b = append(b, `,"transfer":{"from":`...)
			b = appendAgentRef(b, d.Transfer.From)
			if d.Transfer.Consult {
				b = append(b, `,"consult":true`...)
			}
			b = append(b, '}')
		}
		return append(b, '}'), nil
	case CardData:
		b = append(b, `{"card":`...)
		if b, err = e.appendCard(b, &d.Card); err != nil {
			return b, err
		}
		b = append(b, `,"selected_by":`...)
		b = appendAgentRef(b, d.SelectedBy)
		return append(b, '}'), nil
	case SectionData:
		b = append(b, `{"section":`...)
		if b, err = e.appendSection(b, &d.Section); err != nil {
			return b, err
		}
		return append(b, '}'), nil
	case HistoryData:
		b = append(b, `{"history":`...)
		if b, err = e.appendHistory(b, d.History); err != nil {
			return b, err
		}
		if d.CallsLast30Days != nil {
			b = append(b, `,"calls_last_30_days":`...)
			b = strconv.AppendInt(b, int64(*d.CallsLast30Days), 10)
		}
		return append(b, '}'), nil
	case AnsweredData:
		b = append(b, `{"agent":`...)
		b = appendAgentRef(b, d.Agent)
		if d.Transferred {
			b = append(b, `,"transferred":true`...)
		}
		return append(b, '}'), nil
	case WithdrawnData:
		b = append(b, `{"reason":`...)
		b = appendString(b, d.Reason)
		if d.By != nil {
			b = append(b, `,"by":`...)
			b = appendAgentRef(b, *d.By)
		}
		return append(b, '}'), nil
	case EndedData:
		b = append(b, `{"outcome":`...)
		b = appendString(b, string(d.Outcome))
		if d.Agent != nil {
			b = append(b, `,"agent":`...)
			b = appendAgentRef(b, *d.Agent)
		}
		return append(b, '}'), nil
	}
	return appendMarshal(b, data)
}

// appendMarshal appends what json.Marshal makes of v: nested in a
// message, a value is written as it is alone.
func appendMarshal(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, raw...), nil
}

func appendAgentRef(b []byte, r AgentRef) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, r.ID)
	if r.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, r.Name)
	}
	return append(b, '}')
}

func (e *Encoder) appendCard(b []byte, c *screenpop.Card) ([]byte, error) {
	var err error
	b = append(b, `{"call_id":`...)
	b = appendString(b, c.CallID)
	b = append(b, `,"caller":{`...)
	comma := false
	if c.Caller.Number != "" {
		b = append(b, `"number":`...)
		b = appendString(b, c.Caller.Number)
		comma = true
	}
	if c.Caller.Name != "" {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"name":`...)
		b = appendString(b, c.Caller.Name)
		comma = true
	}
	if c.Caller.Withheld {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"withheld":true`...)
	}
	b = append(b, '}')
	if c.Phone != "" {
		b = append(b, `,"phone":`...)
		b = appendString(b, c.Phone)
	}
	if c.PhoneDisplay != "" {
		b = append(b, `,"phone_display":`...)
		b = appendString(b, c.PhoneDisplay)
	}
	b = append(b, `,"resolution":`...)
	b = appendString(b, string(c.Resolution))
	if c.Customer != nil {
		b = append(b, `,"customer":`...)
		b = appendCustomer(b, c.Customer)
	}
	if c.Line != nil {
		b = append(b, `,"line":{"number":`...)
		b = appendString(b, c.Line.Number)
		if c.Line.Label != "" {
			b = append(b, `,"label":`...)
			b = appendString(b, c.Line.Label)
		}
		if c.Line.Display != "" {
			b = append(b, `,"display":`...)
			b = appendString(b, c.Line.Display)
		}
		b = append(b, '}')
	}
	if len(c.Candidates) > 0 {
		b = append(b, `,"candidates":[`...)
		for i := range c.Candidates {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCustomer(b, &c.Candidates[i])
		}
		b = append(b, ']')
	}
	if len(c.Links) > 0 {
		b = append(b, `,"links":[`...)
		for i := range c.Links {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendLink(b, &c.Links[i])
		}
		b = append(b, ']')
	}
	b = append(b, `,"sections":`...)
	if c.Sections == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Sections {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = e.appendSection(b, &c.Sections[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if len(c.Incomplete) > 0 {
		b = append(b, `,"incomplete":`...)
		b = appendStrings(b, c.Incomplete)
	}
	if len(c.History) > 0 {
		b = append(b, `,"history":`...)
		if b, err = e.appendHistory(b, c.History); err != nil {
			return b, err
		}
	}
	if c.CallsLast30Days != nil {
		b = append(b, `,"calls_last_30_days":`...)
		b = strconv.AppendInt(b, int64(*c.CallsLast30Days), 10)
	}
	if c.HistoryLoading {
		b = append(b, `,"history_loading":true`...)
	}
	b = append(b, `,"built_at":`...)
	if b, err = appendTime(b, c.BuiltAt); err != nil {
		return b, err
	}
	b = append(b, `,"took_ms":`...)
	b = strconv.AppendInt(b, c.TookMS, 10)
	return append(b, '}'), nil
}

func appendCustomer(b []byte, c *screenpop.Customer) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, c.ID)
	b = append(b, `,"name":`...)
	b = appendString(b, c.Name)
	for _, f := range [...]struct{ key, value string }{
		{`,"kind":`, c.Kind}, {`,"contact":`, c.Contact}, {`,"role":`, c.Role},
		{`,"email":`, c.Email}, {`,"city":`, c.City}, {`,"country":`, c.Country},
	} {
		if f.value != "" {
			b = append(b, f.key...)
			b = appendString(b, f.value)
		}
	}
	if len(c.Tags) > 0 {
		b = append(b, `,"tags":`...)
		b = appendStrings(b, c.Tags)
	}
	return append(b, '}')
}

func appendLink(b []byte, l *screenpop.CardLink) []byte {
	b = append(b, `{"label":`...)
	b = appendString(b, l.Label)
	if len(l.Labels) > 0 {
		b = append(b, `,"labels":{`...)
		keys := make([]string, 0, len(l.Labels))
		for k := range l.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, l.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"url":`...)
	b = appendString(b, l.URL)
	if l.OpenOnAnswer {
		b = append(b, `,"open_on_answer":true`...)
	}
	if len(l.Roles) > 0 {
		b = append(b, `,"roles":`...)
		b = appendStrings(b, l.Roles)
	}
	return append(b, '}')
}

// appendSection writes s, or the bytes it had when written before.
func (e *Encoder) appendSection(b []byte, s *screenpop.CardSection) ([]byte, error) {
	if len(s.Roles) > 0 {
		// Never in a message an agent gets; not worth remembering.
		return e.writeSection(b, s)
	}
	key := sectionKey{
		name: s.Name, title: s.Title, status: s.Status, err: s.Error, tookMS: s.TookMS, cached: s.Cached, cachedAt: s.CachedAt,
		nFields: len(s.Fields), nLists: len(s.Lists),
	}
	if len(s.Fields) > 0 {
		key.fields = &s.Fields[0]
	}
	if len(s.Lists) > 0 {
		key.lists = &s.Lists[0]
	}
	for i := range e.sections {
		if e.sections[i].key == key {
			return append(b, e.sections[i].raw...), nil
		}
	}
	start := len(b)
	b, err := e.writeSection(b, s)
	if err == nil {
		e.fresh = append(e.fresh, freshSection{key: key, start: start, end: len(b)})
	}
	return b, err
}

func (e *Encoder) writeSection(b []byte, s *screenpop.CardSection) ([]byte, error) {
	var err error
	b = append(b, `{"name":`...)
	b = appendString(b, s.Name)
	b = append(b, `,"title":`...)
	b = appendString(b, s.Title)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	if s.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, s.Error)
	}
	if len(s.Fields) > 0 {
		b = append(b, `,"fields":[`...)
		for i := range s.Fields {
			f := &s.Fields[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendString(b, f.Key)
			b = append(b, `,"label":`...)
			b = appendString(b, f.Label)
			b = append(b, `,"value":`...)
			if b, err = appendValue(b, f.Value); err != nil {
				return b, err
			}
			if f.Format != "" {
				b = append(b, `,"format":`...)
				b = appendString(b, f.Format)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(s.Lists) > 0 {
		b = append(b, `,"lists":[`...)
		for i := range s.Lists {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendList(b, &s.Lists[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"took_ms":`...)
	b = strconv.AppendInt(b, s.TookMS, 10)
	if s.Cached {
		b = append(b, `,"cached":true`...)
	}
	if !s.CachedAt.IsZero() {
		b = append(b, `,"cached_at":`...)
		if b, err = appendTime(b, s.CachedAt); err != nil {
			return b, err
		}
	}
	if len(s.Roles) > 0 {
		b = append(b, `,"roles":`...)
		b = appendStrings(b, s.Roles)
	}
	return append(b, '}'), nil
}

func appendList(b []byte, l *screenpop.List) ([]byte, error) {
	var err error
	b = append(b, `{"key":`...)
	b = appendString(b, l.Key)
	b = append(b, `,"label":`...)
	b = appendString(b, l.Label)
	b = append(b, `,"columns":`...)
	if l.Columns == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, c := range l.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = appendString(b, c.Key)
			b = append(b, `,"label":`...)
			b = appendString(b, c.Label)
			if c.Format != "" {
				b = append(b, `,"format":`...)
				b = appendString(b, c.Format)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"rows":`...)
	if l.Rows == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, r := range l.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendObject(b, r); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if l.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}'), nil
}

// appendHistory writes a card's earlier calls, or the bytes they had
// when written before (for another audience of the card).
func (e *Encoder) appendHistory(b []byte, calls []screenpop.PastCall) ([]byte, error) {
	if len(calls) == 0 {
		return appendPastCalls(b, calls)
	}
	key := historyKey{first: &calls[0], n: len(calls)}
	if e.historyRaw != nil && e.history == key {
		return append(b, e.historyRaw...), nil
	}
	if e.historySeen {
		// Written already in this message: a second card.
		return appendPastCalls(b, calls)
	}
	start := len(b)
	b, err := appendPastCalls(b, calls)
	if err == nil {
		e.history, e.historyRaw, e.historySeen = key, nil, true
		e.historyAt = [2]int{start, len(b)}
	}
	return b, err
}

func appendPastCalls(b []byte, calls []screenpop.PastCall) ([]byte, error) {
	if calls == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '[')
	for i := range calls {
		c := &calls[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"call_id":`...)
		b = appendString(b, c.CallID)
		b = append(b, `,"phone":`...)
		b = appendString(b, c.Phone)
		b = append(b, `,"at":`...)
		if b, err = appendTime(b, c.At); err != nil {
			return b, err
		}
		if c.Agent != "" {
			b = append(b, `,"agent":`...)
			b = appendString(b, c.Agent)
		}
		b = append(b, `,"outcome":`...)
		b = appendString(b, string(c.Outcome))
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, int64(c.Duration), 10)
		if len(c.Notes) > 0 {
			b = append(b, `,"notes":[`...)
			for j := range c.Notes {
				if j > 0 {
					b = append(b, ',')
				}
				if b, err = appendNote(b, &c.Notes[j]); err != nil {
					return b, err
				}
			}
			b = append(b, ']')
		}
		for _, f := range [...]struct{ key, value string }{
			{`,"customer_id":`, c.CustomerID}, {`,"did":`, c.DID}, {`,"agent_name":`, c.AgentName},
			{`,"disposition":`, c.Disposition}, {`,"disposition_label":`, c.DispositionLabel},
		} {
			if f.value != "" {
				b = append(b, f.key...)
				b = appendString(b, f.value)
			}
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

func appendNote(b []byte, n *screenpop.Note) ([]byte, error) {
	var err error
	b = append(b, `{"agent":`...)
	b = appendString(b, n.Agent)
	b = append(b, `,"at":`...)
	if b, err = appendTime(b, n.At); err != nil {
		return b, err
	}
	b = append(b, `,"text":`...)
	b = appendString(b, n.Text)
	if n.ID != "" {
		b = append(b, `,"id":`...)
		b = appendString(b, n.ID)
	}
	if n.AgentName != "" {
		b = append(b, `,"agent_name":`...)
		b = appendString(b, n.AgentName)
	}
	if !n.EditedAt.IsZero() {
		b = append(b, `,"edited_at":`...)
		if b, err = appendTime(b, n.EditedAt); err != nil {
			return b, err
		}
	}
	if n.EditedBy != "" {
		b = append(b, `,"edited_by":`...)
		b = appendString(b, n.EditedBy)
	}
	return append(b, '}'), nil
}

func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, x := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, x)
	}
	return append(b, ']')
}

// appendValue writes a value of a card's content (a field's value, a
// cell of a list) as encoding/json does: the types a source's answer
// decodes to by hand, any other through json.Marshal.
func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case json.Number:
		s := string(x)
		if s == "" {
			s = "0"
		}
		if !isValidNumber(s) {
			return appendMarshal(b, v) // its error
		}
		return append(b, s...), nil
	case float64:
		return appendFloat(b, x)
	case bool:
		return strconv.AppendBool(b, x), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case time.Time:
		return appendTime(b, x)
	case []any:
		if x == nil {
			return append(b, "null"...), nil
		}
		var err error
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendValue(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendObject(b, x)
	}
	return appendMarshal(b, v)
}

// appendObject writes a map as encoding/json does: keys sorted.
func appendObject(b []byte, m map[string]any) ([]byte, error) {
	if m == nil {
		return append(b, "null"...), nil
	}
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var err error
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendValue(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendFloat writes f as encoding/json does (as ES6 converts a number to
// a string); NaN and infinities are an error, as there.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendMarshal(b, f) // its error
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendTime writes t as its MarshalJSON does (RFC 3339, nanoseconds
// without trailing zeros); a time it refuses is an error.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return b, err
	}
	return append(b, '"'), nil
}

// isValidNumber is encoding/json's check of a json.Number: the JSON
// number grammar (RFC 7159, section 6).
func isValidNumber(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
		if s == "" {
			return false
		}
	}
	switch {
	default:
		return false
	case s[0] == '0':
		s = s[1:]
	case '1' <= s[0] && s[0] <= '9':
		s = s[1:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && s[0] == '.' && '0' <= s[1] && s[1] <= '9' {
		s = s[2:]
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	if len(s) >= 2 && (s[0] == 'e' || s[0] == 'E') {
		s = s[1:]
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
			if s == "" {
				return false
			}
		}
		for len(s) > 0 && '0' <= s[0] && s[0] <= '9' {
			s = s[1:]
		}
	}
	return s == ""
}

const hexDigits = "0123456789abcdef"

// plain marks the bytes a JSON string holds as they are: ASCII but
// control characters, the quote, the backslash, and <, > and & (escaped
// for HTML, as encoding/json does).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendString writes s as a JSON string as encoding/json does: <, > and
// & escaped for HTML, control characters escaped, invalid UTF-8 as
// U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if plain[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
