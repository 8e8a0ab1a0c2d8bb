package ari

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	arilib "github.com/CyCoreSystems/ari/v5"
)

// sharedRecordings is where the project keeps the recorded event streams
// (testdata holds copies of some).
const sharedRecordings = "../../../shared/asterisk-events"

// recordingFiles are every recording of testdata and, when it is there,
// of ../shared/asterisk-events.
func recordingFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	shared, err := filepath.Glob(sharedRecordings + "/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(shared) == 0 {
		t.Logf("no recordings in %s: only testdata's", sharedRecordings)
	}
	files = append(files, shared...)
	if len(files) == 0 {
		t.Fatal("no recordings")
	}
	return files
}

func readLines(t *testing.T, file string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for l := range bytes.SplitSeq(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// TestDecodeRecordings decodes every event of every recording both ways:
// every one must take the fast path, and give what ari.DecodeEvent gives
// in every field screenpop reads.
func TestDecodeRecordings(t *testing.T) {
	d := newEventDecoder()
	n := 0
	for _, file := range recordingFiles(t) {
		for i, line := range readLines(t, file) {
			ref, err := arilib.DecodeEvent(line)
			if err != nil || ref == nil {
				t.Fatalf("%s:%d: ari.DecodeEvent: %v, %v", file, i+1, ref, err)
			}
			fast, ok := d.fast(line)
			if !ok {
				t.Errorf("%s:%d: %s left to ari.DecodeEvent", file, i+1, ref.GetType())
				continue
			}
			if got, want := decodedFields(fast), decodedFields(ref); !reflect.DeepEqual(got, want) {
				t.Errorf("%s:%d: fast decoder\n got %s\nwant %s", file, i+1, got, want)
			}
			n++
		}
	}
	t.Logf("%d events compared", n)
}

// TestDecodeSeeds runs the fuzz target's checks on its hand-written seeds
// and says which of them the fast decoder takes: some must be, or the
// checks check nothing.
func TestDecodeSeeds(t *testing.T) {
	d := newEventDecoder()
	taken := 0
	for _, s := range slices.Concat(frameSeeds, decodeSeeds) {
		if checkDecode(t, d, []byte(s)) {
			taken++
		}
	}
	if taken < len(decodeSeeds)/3 {
		t.Errorf("the fast decoder took only %d of %d seeds", taken, len(frameSeeds)+len(decodeSeeds))
	}
}

// decodeSeeds are frames at the edges of what the fast decoder takes:
// fields in another case or written twice, escapes, nulls, timestamps,
// numbers; testdata/fuzz/FuzzDecodeEvent holds more.
var decodeSeeds = []string{
	`{"type":"ChannelCreated","channel":{"id":"1.1","name":"PJSIP/carrier-00000001","state":"Ring","caller":{"name":"A","number":"+4930123456"},"connected":{"name":"","number":""},"dialplan":{"context":"from-carrier","exten":"100","priority":1},"creationtime":"2026-11-23T09:35:51.732+0000","channelvars":{"SCREENPOP_CALL":"1.1","CALLERID(pres)":"allowed"}},"timestamp":"2026-11-23T09:35:51.732+0000","application":"screenpop","asterisk_id":"02:fc:00:00:00:01"}`,
	`{"type":"ChannelCreated","channel":{"ID":"1.1"}}`,
	`{"type":"ChannelCreated","Channel":{"id":"1.1"}}`,
	`{"Type":"ChannelCreated","channel":{"id":"1.1"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","id":"1.2"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1"},"channel":{"id":"1.2"}}`,
	`{"type":"ChannelCreated","channel":{"i\u0064":"1.1"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.\u0031","name":"PJSIP\/1001-00000001"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","name":"caf\u00e9 \ud83d\ude00 \ud83d"}}`,
	"{\"type\":\"ChannelCreated\",\"channel\":{\"id\":\"1.1\",\"name\":\"bad \xff utf8\"}}",
	"{\"type\":\"ChannelCreated\",\"channel\":{\"id\":\"1.1\",\"state\":\"Ring\",\"caller\":{\"name\":\"J\xc3\xbcrgen\",\"number\":\"1\"}}}",
	"{\"type\":\"ChannelCreated\",\"channel\":{\"id\":\"1.1\",\"\xe2\x84\xaaey\":{}}}",
	`{"type":"ChannelCreated","channel":{"id":"1.1","caller":null,"connected":null,"dialplan":null,"channelvars":null}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","caller":{},"dialplan":{},"channelvars":{}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","channelvars":{"A":null}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","channelvars":{"A":"1","A":"2"}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","channelvars":{"A":1}}}`,
	`{"type":"ChannelCreated","channel":{"id":null,"name":null}}`,
	`{"type":"ChannelCreated","channel":null}`,
	`{"type":"ChannelCreated","channel":[]}`,
	`{"type":"ChannelCreated","channel":{"id":1}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","key":{"id":"x"}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":1.0}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":1e3}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":-0}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":01}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":99999999999999999999}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","dialplan":{"priority":"1"}}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2024-02-29T23:59:59.999+0100"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2023-02-29T00:00:00.000+0000"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2023-13-01T00:00:00.000+0000"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2023-01-01T24:00:00.000+0000"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2023-01-01T00:00:00.000Z"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":"2023-01-01T00:00:00.000+2400"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","creationtime":null}}`,
	`{"type":"ChannelCreated","timestamp":null,"channel":{"id":"1.1"}}`,
	`{"type":"ChannelCreated","timestamp":"","channel":{"id":"1.1"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","language":"en","protocol_id":"","extra":[1,-2.5e+3,true,false,null,{"a":[{}]}]}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","extra":[1,]}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","extra":-}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1","extra":"\x"}}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1"}} `,
	`{"type":"ChannelCreated","channel":{"id":"1.1"}} {}`,
	` {"type":"ChannelCreated","channel":{"id":"1.1"}}x`,
	`{"type":"ChannelCreated","channel":{"id":"1.1"},"variable":5}`,
	`{"type":"ChannelCreated","channel":{"id":"1.1"},"Variable":5}`,
	`{"type":"ChannelVarset","variable":"__SCREENPOP_DID","value":"100","channel":{"id":"1.1"}}`,
	`{"type":"ChannelVarset","variable":"X","value":"say \"hi\"\n","channel":{"id":"1.1"}}`,
	`{"type":"ChannelVarset","variable":"X","value":null,"channel":{"id":"1.1"}}`,
	`{"type":"ChannelVarset","variable":"X","VALUE":"1","channel":{"id":"1.1"}}`,
	`{"type":"ChannelDialplan","dialplan_app":"Dial","dialplan_app_data":"PJSIP/1001&PJSIP/1002,30","channel":{"id":"1.1"}}`,
	`{"type":"ChannelCallerId","caller_presentation":35,"caller_presentation_txt":"Presentation Restricted","channel":{"id":"1.1"}}`,
	`{"type":"ChannelCallerId","caller_presentation":-1,"channel":{"id":"1.1"}}`,
	`{"type":"ChannelCallerId","caller_presentation":3.5,"channel":{"id":"1.1"}}`,
	`{"type":"Dial","caller":{"id":"1.1"},"peer":{"id":"1.2","name":"PJSIP/1001-00000002"},"dialstatus":"","dialstring":"1001","forwarded":{"id":"9"},"forward":""}`,
	`{"type":"Dial","caller":null,"peer":null,"dialstatus":"ANSWER"}`,
	`{"type":"ChannelHangupRequest","cause":16,"soft":true,"channel":{"id":"1.1"}}`,
	`{"type":"ChannelHangupRequest","cause":16,"soft":"yes","channel":{"id":"1.1"}}`,
	`{"type":"ChannelDestroyed","cause":17,"cause_txt":"User busy","channel":{"id":"1.2"}}`,
	`{"type":"ChannelDestroyed","cause":null,"channel":{"id":"1.2"}}`,
	`{"type":"ChannelStateChange","channel":{"id":"1.2","state":"Up"}}`,
	`{"type":"ChannelConnectedLine","channel":{"id":"1.2","connected":{"number":"+4930123456"}}}`,
	`{"type":"ChannelEnteredBridge","bridge":{"id":"b","technology":"simple_bridge","bridge_type":"mixing","bridge_class":"basic","creator":"","name":"","channels":["1.1","1.2"],"creationtime":"x","video_mode":"none"},"channel":{"id":"1.1"}}`,
	`{"type":"ChannelLeftBridge","bridge":{"id":"b","channels":[null]},"channel":{"id":"1.1"}}`,
	`{"type":"ChannelLeftBridge","bridge":{"id":"b","channels":"1.1"},"channel":{"id":"1.1"}}`,
	`{"type":"BridgeBlindTransfer","result":"Success","channel":{"id":"1.2"},"transferee":{"id":"1.1"},"replace_channel":{"id":"1.5"},"bridge":{"id":"b"},"context":"agents","exten":"1003","is_external":false}`,
	`{"type":"BridgeAttendedTransfer","result":"Success","destination_type":"bridge","destination_bridge":"b","transferer_first_leg":{"id":"1.2"},"transferer_second_leg":{"id":"1.4"},"transferee":{"id":"1.1"},"transfer_target":{"id":"1.5"},"transferer_first_leg_bridge":{"id":"b"},"transferer_second_leg_bridge":null,"destination_threeway_channel":{},"destination_threeway_bridge":{},"destination_link_first_leg":{"id":"x"},"destination_link_second_leg":null,"destination_application":"","is_external":true,"replace_channel":{}}`,
	`{"type":"DeviceStateChanged","application":"screenpop","timestamp":"2026-11-23T09:35:51.737+0000","device_state":{"name":"PJSIP/1001","state":"RINGING"},"asterisk_id":"02:fc:00:00:00:01"}`,
	`{"type":"DeviceStateChanged","device_state":{"name":"PJSIP/1001","State":"RINGING"}}`,
	`{"type":"BridgeCreated","bridge":{"id":"b","channels":[]}}`,
	`{"type":"BridgeDestroyed","bridge":null}`,
	`{"type":"ApplicationReplaced","application":"screenpop"}`,
	`{"type":"ChannelTalkingStarted","channel":{"id":"1.1"}}`,
	`{"type":"SomethingNew","channel":{"id":"1.1"}}`,
	`{"type":"Dia\u006c","caller":{"id":"1.1"},"peer":{"id":"1.2"},"dialstatus":""}`,
	`{"type":null}`,
	`{"type":""}`,
	`{"dialog":"d","type":"ChannelStateChange","channel":{"id":"1.2","state":"Up"}}`,
}

// checkDecode decodes frame both ways: whatever the fast decoder takes,
// ari.DecodeEvent takes too, with the same fields screenpop reads; and
// decode answers as ari.DecodeEvent does (an event or nil, an error or
// none). It reports whether the fast decoder took the frame.
func checkDecode(t *testing.T, d *eventDecoder, frame []byte) bool {
	t.Helper()
	ref, refErr := arilib.DecodeEvent(frame)
	fast, ok := d.fast(frame)
	if ok {
		switch {
		case refErr != nil:
			t.Fatalf("the fast decoder took %q, which ari.DecodeEvent refuses: %v", frame, refErr)
		case ref == nil:
			t.Fatalf("the fast decoder took %q, of a type ari.DecodeEvent does not know", frame)
		}
		if got, want := decodedFields(fast), decodedFields(ref); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast decoder\n got %s\nwant %s", frame, got, want)
		}
	}
	ev, err := d.decode(frame)
	if (err != nil) != (refErr != nil) || (ev == nil) != (ref == nil) {
		t.Fatalf("%q: decode gave %v, %v; ari.DecodeEvent %v, %v", frame, ev, err, ref, refErr)
	}
	if ev != nil && !reflect.DeepEqual(decodedFields(ev), decodedFields(ref)) {
		t.Fatalf("%q: decode\n got %s\nwant %s", frame, decodedFields(ev), decodedFields(ref))
	}
	return ok
}

// FuzzDecodeEvent: for any frame, the fast decoder either leaves it to
// ari.DecodeEvent or decodes it as ari.DecodeEvent does in every field
// screenpop reads (so a frame ari.DecodeEvent refuses, it refuses too);
// and the decoder as the source uses it answers as ari.DecodeEvent does,
// error or not, event or not. Seeds: every frame of the recordings,
// frameSeeds, decodeSeeds and testdata/fuzz/FuzzDecodeEvent.
func FuzzDecodeEvent(f *testing.F) {
	for _, name := range []string{"answered.jsonl", "abandoned.jsonl"} {
		for _, l := range readRecording(f, name) {
			f.Add(l)
		}
	}
	for _, s := range slices.Concat(frameSeeds, decodeSeeds) {
		f.Add([]byte(s))
	}
	d := newEventDecoder()
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkDecode(t, d, frame)
	})
}

// TestFastDecoderFields checks the decoder's idea of ari/v5's types
// against the types themselves: every JSON field of every event type it
// takes is one it reads or validates, as the Go type it expects; and the
// field names of the nested structs are the ones it knows (it leaves a
// frame to encoding/json when one of them comes in another case).
func TestFastDecoderFields(t *testing.T) {
	// What the decoder reads each top-level key as.
	want := map[string]reflect.Type{}
	str, integer, boolean := reflect.TypeFor[string](), reflect.TypeFor[int](), reflect.TypeFor[bool]()
	for _, k := range []string{"application", "dialog", "asterisk_id", "type", "variable", "value",
		"dialplan_app", "dialplan_app_data", "caller_presentation_txt", "dialstatus", "dialstring", "forward",
		"cause_txt", "context", "exten", "result", "destination_application", "destination_bridge", "destination_type"} {
		want[k] = str
	}
	for _, k := range []string{"caller_presentation", "cause"} {
		want[k] = integer
	}
	for _, k := range []string{"soft", "is_external"} {
		want[k] = boolean
	}
	want["timestamp"] = reflect.TypeFor[arilib.DateTime]()
	for _, k := range []string{"channel", "caller", "forwarded", "peer", "replace_channel", "transferee",
		"destination_link_first_leg", "destination_link_second_leg", "destination_threeway_channel",
		"transfer_target", "transferer_first_leg", "transferer_second_leg"} {
		want[k] = reflect.TypeFor[arilib.ChannelData]()
	}
	for _, k := range []string{"bridge", "destination_threeway_bridge", "transferer_first_leg_bridge", "transferer_second_leg_bridge"} {
		want[k] = reflect.TypeFor[arilib.BridgeData]()
	}
	want["device_state"] = reflect.TypeFor[arilib.DeviceStateData]()
	if len(want) != len(topNames) {
		t.Errorf("%d keys typed here, %d in topNames", len(want), len(topNames))
	}
	for k := range want {
		if !topNames[k] {
			t.Errorf("%q is not in topNames", k)
		}
	}

	for _, typ := range fastTypes {
		ev, err := arilib.DecodeEvent([]byte(`{"type":"` + typ + `"}`))
		if err != nil || ev == nil {
			t.Fatalf("%s: %v, %v", typ, ev, err)
		}
		for name, ft := range jsonFields(reflect.TypeOf(ev).Elem()) {
			switch w, ok := want[name]; {
			case !ok:
				t.Errorf("%s.%s: the fast decoder does not know it", typ, name)
			case w != ft:
				t.Errorf("%s.%s is a %v, the fast decoder reads a %v", typ, name, ft, w)
			}
		}
	}

	// ChannelData decodes through a struct of its own, which its
	// MarshalJSON writes with every field (key only when set).
	full, err := json.Marshal(&arilib.ChannelData{Key: &arilib.Key{}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(full, &m); err != nil {
		t.Fatal(err)
	}
	sameNames(t, "ChannelData", keysOf(m), channelNames)
	sameNames(t, "CallerID", jsonFields(reflect.TypeFor[arilib.CallerID]()), callerNames)
	sameNames(t, "DialplanCEP", jsonFields(reflect.TypeFor[arilib.DialplanCEP]()), dialplanNames)
	sameNames(t, "BridgeData", jsonFields(reflect.TypeFor[arilib.BridgeData]()), bridgeNames)
	sameNames(t, "DeviceStateData", jsonFields(reflect.TypeFor[arilib.DeviceStateData]()), deviceNames)
}

func keysOf[V any](m map[string]V) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for k := range m {
		out[k] = nil
	}
	return out
}

func sameNames(t *testing.T, what string, got map[string]reflect.Type, want map[string]bool) {
	t.Helper()
	for k := range got {
		if !want[k] {
			t.Errorf("%s has JSON field %q, which the fast decoder does not know", what, k)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("the fast decoder knows %s.%s, which ari/v5 does not have", what, k)
		}
	}
}

// jsonFields are the JSON names of a struct's fields as encoding/json
// sees them: embedded structs without a name promoted, "-" left out.
func jsonFields(st reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range st.NumField() {
		sf := st.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			for k, v := range jsonFields(sf.Type) {
				out[k] = v
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		out[name] = sf.Type
	}
	return out
}

// decodedFields are the fields of an event screenpop reads (the call
// model, the source's counting), in a form to compare and print.
func decodedFields(ev arilib.Event) fieldList {
	out := fieldList{
		{"type", ev.GetType()}, {"application", ev.GetApplication()},
		{"dialog", ev.GetDialog()}, {"asterisk_id", ev.GetNode()},
	}
	add := func(name string, v any) { out = append(out, field{name, v}) }
	ch := func(name string, c *arilib.ChannelData) { add(name, channelFields(c)) }
	switch e := ev.(type) {
	case *arilib.ChannelCreated:
		ch("channel", &e.Channel)
	case *arilib.ChannelVarset:
		ch("channel", &e.Channel)
		add("variable", e.Variable)
		add("value", e.Value)
	case *arilib.ChannelDialplan:
		ch("channel", &e.Channel)
		add("dialplan_app", e.DialplanApp)
		add("dialplan_app_data", e.DialplanAppData)
	case *arilib.ChannelCallerID:
		ch("channel", &e.Channel)
		add("caller_presentation", e.CallerPresentation)
	case *arilib.Dial:
		ch("caller", &e.Caller)
		ch("peer", &e.Peer)
		add("dialstatus", e.Dialstatus)
	case *arilib.ChannelHangupRequest:
		ch("channel", &e.Channel)
		add("cause", e.Cause)
	case *arilib.ChannelDestroyed:
		ch("channel", &e.Channel)
		add("cause", e.Cause)
	case *arilib.ChannelStateChange:
		ch("channel", &e.Channel)
	case *arilib.ChannelConnectedLine:
		ch("channel", &e.Channel)
	case *arilib.ChannelEnteredBridge:
		ch("channel", &e.Channel)
	case *arilib.ChannelLeftBridge:
		ch("channel", &e.Channel)
	case *arilib.BridgeBlindTransfer:
		add("result", e.Result)
		ch("channel", &e.Channel)
		ch("transferee", &e.Transferee)
		ch("replace_channel", &e.ReplaceChannel)
	case *arilib.BridgeAttendedTransfer:
		add("result", e.Result)
		add("destination_type", e.DestinationType)
		ch("transferee", &e.Transferee)
		ch("transfer_target", &e.TransferTarget)
		ch("transferer_first_leg", &e.TransfererFirstLeg)
		ch("transferer_second_leg", &e.TransfererSecondLeg)
		ch("replace_channel", &e.ReplaceChannel)
	case *arilib.DeviceStateChanged:
		add("device_state", [2]string{e.DeviceState.Name, e.DeviceState.State})
	}
	return out
}

type field struct {
	name string
	v    any
}

type fieldList []field

func (l fieldList) String() string {
	var b strings.Builder
	for _, f := range l {
		fmt.Fprintf(&b, "\n  %s: %+v", f.name, f.v)
	}
	return b.String()
}

// channelView is what screenpop reads of a channel snapshot (Resync reads
// the creation time too, but from GET /ari/channels, not from events).
type channelView struct {
	ID, Name, State, Accountcode string
	Caller, Connected            *[2]string // name, number
	Dialplan                     *dialplanView
	Vars                         map[string]string
	NilVars                      bool
}

type dialplanView struct {
	Context, Exten string
	Priority       int64
}

func channelFields(c *arilib.ChannelData) channelView {
	v := channelView{ID: c.ID, Name: c.Name, State: c.State, Accountcode: c.Accountcode,
		Vars: c.ChannelVars, NilVars: c.ChannelVars == nil}
	if c.Caller != nil {
		v.Caller = &[2]string{c.Caller.Name, c.Caller.Number}
	}
	if c.Connected != nil {
		v.Connected = &[2]string{c.Connected.Name, c.Connected.Number}
	}
	if c.Dialplan != nil {
		v.Dialplan = &dialplanView{c.Dialplan.Context, c.Dialplan.Exten, c.Dialplan.Priority}
	}
	return v
}

// BenchmarkDecodeRecordedCall decodes every frame of an answered call (118
// events), with the source's decoder and with ari.DecodeEvent alone.
//
//	go test -run '^$' -bench DecodeRecordedCall -benchmem ./telephony/ari/
func BenchmarkDecodeRecordedCall(b *testing.B) {
	lines := readRecording(b, "answered.jsonl")
	b.Run("fast", func(b *testing.B) {
		d := newEventDecoder()
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				if _, err := d.decode(l); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("ari.DecodeEvent", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range lines {
				if _, err := arilib.DecodeEvent(l); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
