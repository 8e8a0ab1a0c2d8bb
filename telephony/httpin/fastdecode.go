package httpin

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeFast decodes the bodies PBXs post when all is well — an event
// object, or an array of 1..maxEventsPerRequest of them, written in the
// plain JSON every encoder writes — without reflection: decoding was most
// of the handler's time. It reports false for anything it is not sure
// about (a key in another case, a key twice, a null in an array, a lone
// surrogate, a value of the wrong type, any syntax error, …); decode then
// leaves the body to encoding/json, which decides and words the mistake.
// Whatever it accepts it must decode exactly as encoding/json would with
// unknown fields disallowed: FuzzDecodeFast checks that.
func decodeFast(body []byte) ([]wireEvent, bool) {
	p := parser{data: body}
	p.space()
	if p.peek() != '[' {
		one := make([]wireEvent, 1)
		if !p.event(&one[0]) || !p.end() {
			return nil, false
		}
		return one, true
	}
	p.i++
	p.space()
	if p.peek() == ']' {
		return nil, false // "empty array": decode words it
	}
	// A batch is usually one call's events or a few calls': start small.
	out := make([]wireEvent, 0, min(4, len(body)/32+1))
	for {
		if len(out) == maxEventsPerRequest {
			return nil, false
		}
		out = append(out, wireEvent{})
		if !p.event(&out[len(out)-1]) {
			return nil, false
		}
		p.space()
		switch p.next() {
		case ',':
			p.space()
			continue
		case ']':
			if !p.end() {
				return nil, false
			}
			return out, true
		}
		return nil, false
	}
}

// parser reads JSON from data at i. Its methods report false on anything
// decodeFast does not take.
type parser struct {
	data []byte
	i    int
}

func (p *parser) peek() byte {
	if p.i < len(p.data) {
		return p.data[p.i]
	}
	return 0
}

func (p *parser) next() byte {
	c := p.peek()
	p.i++
	return c
}

// space skips JSON white space.
func (p *parser) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// end reports whether nothing but white space is left.
func (p *parser) end() bool {
	p.space()
	return p.i == len(p.data)
}

// fields of an event object, as bits: a key seen twice is left to
// encoding/json (which merges a repeated object into the first).
const (
	fEvent = 1 << iota
	fCallID
	fCaller
	fDID
	fAgents
	fEndpoints
	fAgent
	fEndpoint
	fOutcome
	fAt
	fRangOut
	fTransfer
)

// object reads {"key": value, ...}, calling field for each key with the
// parser at its value: field reads the value and returns the key's bit and
// whether it read it (false for a key it does not know). A key seen twice
// is left to encoding/json.
func (p *parser) object(field func(key []byte) (bit uint, ok bool)) bool {
	var seen uint
	p.space()
	if p.next() != '{' {
		return false
	}
	p.space()
	if p.peek() == '}' {
		p.i++
		return true
	}
	for {
		p.space()
		key, ok := p.plainString()
		if !ok {
			return false
		}
		p.space()
		if p.next() != ':' {
			return false
		}
		p.space()
		bit, ok := field(key)
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		p.space()
		switch p.next() {
		case ',':
			continue
		case '}':
			return true
		}
		return false
	}
}

// event reads one wireEvent object.
func (p *parser) event(we *wireEvent) bool {
	return p.object(func(key []byte) (uint, bool) {
		switch string(key) {
		case "event":
			return fEvent, p.stringValue(&we.Event)
		case "call_id":
			return fCallID, p.stringValue(&we.CallID)
		case "caller":
			return fCaller, p.caller(&we.Caller)
		case "did":
			return fDID, p.stringValue(&we.DID)
		case "agents":
			return fAgents, p.strings(&we.Agents)
		case "endpoints":
			return fEndpoints, p.strings(&we.Endpoints)
		case "agent":
			return fAgent, p.stringValue(&we.Agent)
		case "endpoint":
			return fEndpoint, p.stringValue(&we.Endpoint)
		case "outcome":
			return fOutcome, p.stringValue(&we.Outcome)
		case "at":
			return fAt, p.stringValue(&we.At)
		case "rang_out":
			return fRangOut, p.boolValue(&we.RangOut)
		case "transfer":
			return fTransfer, p.transfer(&we.Transfer)
		}
		return 0, false
	})
}

func (p *parser) caller(dst **wireCaller) bool {
	if p.null() {
		return true
	}
	c := &wireCaller{}
	ok := p.object(func(key []byte) (uint, bool) {
		switch string(key) {
		case "number":
			return 1, p.stringValue(&c.Number)
		case "name":
			return 2, p.stringValue(&c.Name)
		case "withheld":
			return 4, p.boolValue(&c.Withheld)
		}
		return 0, false
	})
	*dst = c
	return ok
}

func (p *parser) transfer(dst **wireTransfer) bool {
	if p.null() {
		return true
	}
	t := &wireTransfer{}
	ok := p.object(func(key []byte) (uint, bool) {
		switch string(key) {
		case "from":
			return 1, p.stringValue(&t.From)
		case "from_endpoint":
			return 2, p.stringValue(&t.FromEndpoint)
		case "consult":
			return 4, p.boolValue(&t.Consult)
		}
		return 0, false
	})
	*dst = t
	return ok
}

// null reads a null if there is one: encoding/json leaves the field as it
// is, and the fields of a new event are zero.
func (p *parser) null() bool {
	if len(p.data)-p.i >= 4 && string(p.data[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

func (p *parser) boolValue(dst *bool) bool {
	rest := p.data[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		*dst = true
		p.i += 4
	case len(rest) >= 5 && string(rest[:5]) == "false":
		*dst = false
		p.i += 5
	default:
		return p.null()
	}
	return true
}

// strings reads an array of strings; [] is an empty array, not nil, as
// encoding/json makes it ("agents": [] means nobody rings now).
func (p *parser) strings(dst *[]string) bool {
	if p.null() {
		return true
	}
	if p.next() != '[' {
		return false
	}
	out := []string{}
	p.space()
	if p.peek() == ']' {
		p.i++
		*dst = out
		return true
	}
	for {
		p.space()
		var s string
		if p.peek() != '"' || !p.stringValue(&s) {
			return false // a null in the array is left to encoding/json
		}
		out = append(out, s)
		p.space()
		switch p.next() {
		case ',':
			continue
		case ']':
			*dst = out
			return true
		}
		return false
	}
}

// knownValues are the values of event and outcome, interned: the common
// strings cost no allocation.
var knownValues = func() map[string]string {
	out := map[string]string{}
	for k := range kinds {
		out[k] = k
	}
	for k := range outcomes {
		out[k] = k
	}
	return out
}()

// stringValue reads a string, or a null (which leaves *dst as it is).
func (p *parser) stringValue(dst *string) bool {
	if p.null() {
		return true
	}
	if p.peek() != '"' {
		return false
	}
	start := p.i + 1
	j := start
	for ; j < len(p.data); j++ {
		c := p.data[j]
		if c == '"' {
			break
		}
		if c == '\\' {
			s, ok := p.escaped()
			*dst = s
			return ok
		}
		if c < 0x20 {
			return false
		}
	}
	if j == len(p.data) {
		return false
	}
	raw := p.data[start:j]
	if !utf8.Valid(raw) {
		return false // encoding/json puts U+FFFD in; leave it to it
	}
	p.i = j + 1
	if s, ok := knownValues[string(raw)]; ok {
		*dst = s
	} else {
		*dst = string(raw)
	}
	return true
}

// plainString reads a key: a string without escapes (encoding/json
// matches keys with escapes or in another case too; decodeFast leaves
// those to it).
func (p *parser) plainString() ([]byte, bool) {
	if p.next() != '"' {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.data); p.i++ {
		switch c := p.data[p.i]; {
		case c == '"':
			p.i++
			return p.data[start : p.i-1], true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return nil, false
		}
	}
	return nil, false
}

// escaped reads a string with escapes, from its opening quote at p.i.
func (p *parser) escaped() (string, bool) {
	j := p.i + 1
	var b []byte
	for j < len(p.data) {
		c := p.data[j]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", false
			}
			p.i = j + 1
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = append(b, c)
			j++
			continue
		}
		if j+1 >= len(p.data) {
			return "", false
		}
		switch e := p.data[j+1]; e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(p.data, j+2)
			if !ok {
				return "", false
			}
			j += 6
			if utf16.IsSurrogate(r) {
				// Only a well-formed pair: encoding/json's handling of a
				// lone half is its own to decide.
				if j+1 >= len(p.data) || p.data[j] != '\\' || p.data[j+1] != 'u' {
					return "", false
				}
				r2, ok := hex4(p.data, j+2)
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", false
				}
				j += 6
			}
			b = utf8.AppendRune(b, r)
			continue
		default:
			return "", false
		}
		j += 2
	}
	return "", false
}

// hex4 reads the four hex digits of a \u escape at data[i:].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(data[i:i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}
