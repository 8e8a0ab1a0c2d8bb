package bench

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tidwall/gjson"
)

// FloorConfig configures the floor: a bare gorilla/websocket server that
// takes the same call-event posts as the daemon and only forwards, for
// each, one message of the size the daemon sends for it to the agent's
// sockets. No card, no state, no log: what any WebSocket push costs on
// this machine, against which the daemon is measured.
type FloorConfig struct {
	Listen string // host:port; port 0 picks one
	Token  string // the bearer token call-event posts carry
	// Sizes of the messages sent for a ringing, answered and ended event,
	// in bytes: those of the daemon's pop, answered and ended.
	PopSize, AnsweredSize, EndedSize int
	// ARI, when set, is the URL of a PBX's REST interface (the harness's
	// fake Asterisk) whose events socket the floor also reads, as app
	// ARIApp with ARIUser and ARIPassword: every frame is read, and only
	// those that ring, answer or end an agent's call send a message
	// (ARIName/<the caller's channel id>, as the daemon names the call).
	ARI, ARIApp, ARIUser, ARIPassword, ARIName string
	// Systems, when set, is the base URL of the company's systems (the
	// harness's directory and sources): a ringing event then asks them
	// as a daemon with nothing cached does (the directory for the
	// caller's number, then accounting, sales and credit for the
	// customer it names, in parallel) and sends a pop of MissPopSize
	// bytes, its three sections still loading, once the directory has
	// answered, a section message of SectionSize bytes as each source but
	// the last answers, and, when the last does, the complete card in
	// MissCardSize bytes (as the daemon leaves what settles last to the
	// complete card; 0: a section message for the last too): the floor
	// of a cache miss. The answers are read whole; only the customer's id
	// is looked at.
	Systems                                string
	MissPopSize, SectionSize, MissCardSize int
}

// floorPrefix is the line the floor prints on standard output once it
// listens: "popfloor listening on http://127.0.0.1:port".
const floorPrefix = "popfloor listening on "

// ServeFloor runs the floor until ctx ends, printing floorPrefix and its
// address to out once it listens.
func ServeFloor(ctx context.Context, cfg FloorConfig, out io.Writer) error {
	if cfg.Token == "" {
		return errors.New("floor: a token is required")
	}
	f := &floor{cfg: cfg, agents: map[string]*floorAgent{}, answeredBy: map[string]string{}}
	if cfg.Systems != "" {
		// As the daemon's http sources: connections kept for reuse, and
		// a bound on each request.
		f.client = &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{
			MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/call-events/{name}", f.events)
	mux.HandleFunc("GET /ws", f.socket)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if cfg.ARI != "" {
		conn, err := f.dialARI(ctx)
		if err != nil {
			_ = l.Close()
			return err
		}
		go func() {
			<-ctx.Done()
			_ = conn.Close()
		}()
		go f.readARI(conn)
	}
	fmt.Fprintf(out, "%shttp://%s\n", floorPrefix, l.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type floor struct {
	cfg      FloorConfig
	upgrader websocket.Upgrader

	mu     sync.RWMutex
	agents map[string]*floorAgent
	// answeredBy is, per call of the events socket, the agent who
	// answered it (readARI's alone).
	answeredBy map[string]string
	client     *http.Client // asks cfg.Systems; nil without
}

type floorAgent struct {
	mu    sync.Mutex
	seq   uint64
	conns []*websocket.Conn
}

// wireEvent is the part of a posted call event the floor reads.
type wireEvent struct {
	Event  string   `json:"event"`
	CallID string   `json:"call_id"`
	Agents []string `json:"agents"`
	Agent  string   `json:"agent"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
}

func (f *floor) events(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || subtle.ConstantTimeCompare([]byte(tok), []byte(f.cfg.Token)) != 1 {
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var evs []wireEvent
	if trimmed := bytes.TrimSpace(body); len(trimmed) > 0 && trimmed[0] == '[' {
		err = json.Unmarshal(body, &evs)
	} else {
		evs = make([]wireEvent, 1)
		err = json.Unmarshal(body, &evs[0])
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	callPrefix := r.PathValue("name") + "/"
	for _, ev := range evs {
		switch ev.Event {
		case "ringing":
			if f.client != nil {
				go f.missCard(ev.Agents, callPrefix+ev.CallID, ev.Caller.Number)
				continue
			}
			for _, a := range ev.Agents {
				f.send(a, "pop", callPrefix+ev.CallID, f.cfg.PopSize)
			}
		case "answered":
			f.send(ev.Agent, "answered", callPrefix+ev.CallID, f.cfg.AnsweredSize)
		case "ended":
			f.send(ev.Agent, "ended", callPrefix+ev.CallID, f.cfg.EndedSize)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"accepted\":%d}\n", len(evs))
}

// floorSources are the sources a card of the harness's systems asks,
// which are also its sections.
var floorSources = []string{"accounting", "sales", "credit"}

// missCard is a card with nothing cached, as bare as it can be: the
// directory asked for phone, a pop of MissPopSize bytes to every agent
// rung (its sections loading), then the three sources asked at once, a
// section message of SectionSize bytes to every agent as each answers
// but the last, and the complete card in MissCardSize bytes as the last
// does: the messages the daemon sends, in number and size.
func (f *floor) missCard(agents []string, callID, phone string) {
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	status := "loading"
	body, err := f.get(ctx, f.cfg.Systems+"/directory?phone="+url.QueryEscape(phone))
	id := gjson.GetBytes(body, "0.id").String()
	if err != nil || id == "" {
		status = "error"
	}
	var card strings.Builder
	card.WriteString(`"card":{"sections":[`)
	for i, name := range floorSources {
		if i > 0 {
			card.WriteByte(',')
		}
		fmt.Fprintf(&card, `{"name":%q,"status":%q}`, name, status)
	}
	card.WriteString(`]},`)
	for _, a := range agents {
		f.sendData(a, "pop", callID, card.String(), f.cfg.MissPopSize)
	}
	if status == "error" {
		return
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = make([]string, len(floorSources))
		left     = len(floorSources)
	)
	for i, name := range floorSources {
		wg.Go(func() {
			status := "ok"
			if _, err := f.get(ctx, f.cfg.Systems+"/"+name+"/"+url.PathEscape(id)); err != nil {
				status = "error"
			}
			mu.Lock()
			statuses[i] = status
			left--
			last := left == 0 && f.cfg.MissCardSize > 0
			mu.Unlock()
			if last {
				var card strings.Builder
				card.WriteString(`"card":{"sections":[`)
				for j, name := range floorSources {
					if j > 0 {
						card.WriteByte(',')
					}
					fmt.Fprintf(&card, `{"name":%q,"status":%q}`, name, statuses[j])
				}
				card.WriteString(`]},`)
				for _, a := range agents {
					f.sendData(a, "card", callID, card.String(), f.cfg.MissCardSize)
				}
				return
			}
			section := fmt.Sprintf(`"section":{"name":%q,"status":%q},`, name, status)
			for _, a := range agents {
				f.sendData(a, "section", callID, section, f.cfg.SectionSize)
			}
		})
	}
	wg.Wait()
}

// get is the whole body of a 200 answer to a GET of u.
func (f *floor) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", u, resp.Status)
	}
	return body, err
}

// send writes one message of size bytes to every socket of agent.
func (f *floor) send(agent, typ, callID string, size int) {
	f.sendData(agent, typ, callID, "", size)
}

// sendData is send with data's fields (each followed by a comma) first
// in the message's data.
func (f *floor) sendData(agent, typ, callID, data string, size int) {
	if agent == "" {
		return
	}
	f.mu.RLock()
	a := f.agents[agent]
	f.mu.RUnlock()
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seq++
	msg := floorMessage(a.seq, typ, callID, data, size)
	for _, c := range a.conns {
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			_ = c.Close() // its reader removes it
		}
	}
}

// floorMessage is an envelope like the daemon's, with data's fields
// (each followed by a comma) in its data, padded to size bytes.
func floorMessage(seq uint64, typ, callID, data string, size int) []byte {
	b := make([]byte, 0, max(size, 128))
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","call_id":`...)
	b = strconv.AppendQuote(b, callID)
	b = append(b, `,"at":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","data":{`...)
	b = append(b, data...)
	b = append(b, `"pad":"`...)
	for len(b) < size-3 {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)
}

func (f *floor) socket(w http.ResponseWriter, r *http.Request) {
	agent := r.URL.Query().Get("agent")
	if agent == "" {
		http.Error(w, "agent is required", http.StatusBadRequest)
		return
	}
	c, err := f.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	f.mu.Lock()
	a := f.agents[agent]
	if a == nil {
		a = &floorAgent{}
		f.agents[agent] = a
	}
	f.mu.Unlock()
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
	// Read until the client goes (pings are answered while reading).
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
	}
	_ = c.Close()
	a.mu.Lock()
	for i, x := range a.conns {
		if x == c {
			a.conns = append(a.conns[:i], a.conns[i+1:]...)
			break
		}
	}
	a.mu.Unlock()
}

// dialARI opens the PBX's events socket, as the daemon does.
func (f *floor) dialARI(ctx context.Context) (*websocket.Conn, error) {
	u := "ws" + strings.TrimPrefix(f.cfg.ARI, "http") + "/ari/events?subscribeAll=true&app=" + url.QueryEscape(f.cfg.ARIApp)
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(f.cfg.ARIUser+":"+f.cfg.ARIPassword)))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, ReadBufferSize: 64 << 10}
	conn, resp, err := d.DialContext(ctx, u, h)
	if resp != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("floor: the events socket %s: %w", f.cfg.ARI, err)
	}
	return conn, nil
}

// Markers of the only frames the floor acts on, as Asterisk writes them.
var (
	dialMark      = []byte(`"type":"Dial"`)
	destroyedMark = []byte(`"type":"ChannelDestroyed"`)
)

// readARI reads every frame of the events socket until it closes. A Dial
// that starts ringing an agent sends that agent a pop; one that answers
// sends an answered; the caller's channel destroyed sends the agent who
// answered an ended: what the daemon sends for such a call, with no call
// model, no decoding beyond the few fields named, and no card.
func (f *floor) readARI(conn *websocket.Conn) {
	var buf bytes.Buffer
	for {
		_, r, err := conn.NextReader()
		if err != nil {
			return
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return
		}
		frame := buf.Bytes()
		switch {
		case bytes.Contains(frame, dialMark):
			status := jsonField(frame, `"dialstatus":"`)
			agent := string(jsonField(frame, `"dialstring":"`))
			call := f.cfg.ARIName + "/" + string(jsonField(frame, `"caller":{"id":"`))
			switch string(status) {
			case "":
				f.send(agent, "pop", call, f.cfg.PopSize)
			case "ANSWER":
				f.answeredBy[call] = agent
				f.send(agent, "answered", call, f.cfg.AnsweredSize)
			}
		case bytes.Contains(frame, destroyedMark):
			call := f.cfg.ARIName + "/" + string(jsonField(frame, `"channel":{"id":"`))
			if agent, ok := f.answeredBy[call]; ok {
				delete(f.answeredBy, call)
				f.send(agent, "ended", call, f.cfg.EndedSize)
			}
		}
	}
}

// jsonField is the string value after the first key (with its opening
// quote) in frame, as written: no escapes are undone.
func jsonField(frame []byte, key string) []byte {
	_, rest, ok := bytes.Cut(frame, []byte(key))
	if !ok {
		return nil
	}
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	return v
}
