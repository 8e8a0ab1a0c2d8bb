package ari

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/queue"
)

// CheckStatus grades one finding of Check.
type CheckStatus string

// The statuses of a CheckLine. Only CheckFail means screenpop cannot work
// against this PBX as it is.
const (
	CheckOK   CheckStatus = "ok"
	CheckWarn CheckStatus = "WARN"
	CheckFail CheckStatus = "FAIL"
	CheckInfo CheckStatus = "info"
)

// The checks of a Report, in the order they are reported.
const (
	CheckReachable    = "reachable"
	CheckUser         = "user"
	CheckReadOnly     = "read_only"
	CheckEventsSocket = "res_ari_events"
	CheckSubscription = "subscription"
	CheckChannels     = "channels"
	CheckChannelVars  = "channelvars"
	CheckEventFilter  = "event_filter"
	CheckWriteTimeout = "websocket_write_timeout"
	CheckVersion      = "asterisk_version"
)

var checkOrder = []string{
	CheckReachable, CheckUser, CheckReadOnly, CheckEventsSocket, CheckSubscription,
	CheckChannels, CheckChannelVars, CheckEventFilter, CheckWriteTimeout, CheckVersion,
}

// CheckLine is one finding: what was checked, how it stands, what was
// found and, for a problem, the exact fix.
type CheckLine struct {
	// Check is one of the Check* names; channelvars lines add the
	// variable ("channelvars SCREENPOP_DID").
	Check  string      `json:"check"`
	Status CheckStatus `json:"status"`
	Found  string      `json:"found"`
	Fix    string      `json:"fix,omitempty"`
}

// Report is what Check found on one Asterisk.
type Report struct {
	URL   string      `json:"url"`
	App   string      `json:"app"`
	Lines []CheckLine `json:"lines"`
}

// Failed says whether any line is a FAIL.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Lines, func(l CheckLine) bool { return l.Status == CheckFail })
}

// NeededEvents are the event types the call model uses: an event filter
// on the application that drops any of them loses calls or their ends.
var NeededEvents = []string{
	"ChannelCreated", "ChannelDestroyed", "ChannelStateChange", "Dial", "ChannelVarset",
	"ChannelDialplan", "ChannelHangupRequest", "ChannelCallerId", "ChannelConnectedLine",
	"BridgeBlindTransfer", "BridgeAttendedTransfer", "ChannelEnteredBridge", "ChannelLeftBridge",
}

// MinAsteriskMajor is the oldest Asterisk major version Check accepts
// without a warning. The ARI screenpop relies on came piecemeal
// (subscribeAll in 13.6, channelvars in snapshots in 14.2, event filters in
// 13.26/16.3); 16 is the first major version with all of it, and the one
// configs/asterisk documents.
const MinAsteriskMajor = 16

// readOnlyProbe is a resource ARI does not have. Asterisk refuses a write
// of a read_only user with 403 "Write access denied" before it looks the
// resource up (res_ari.c), and answers a user with write access 404: a POST
// there tells the two apart and cannot change anything either way.
const readOnlyProbe = "screenpop-read-only-probe"

// WriteTimeoutAdvice is reported for websocket_write_timeout, which ARI
// does not expose.
const WriteTimeoutAdvice = "cannot be read over ARI; check ari.conf [general] websocket_write_timeout ≥ 1000 recommended (default 100 ms: Asterisk drops a socket whose reader stalls that long)"

// Check diagnoses cfg's Asterisk for screenpop, the way IT needs it when
// wiring a PBX: reachable, user accepted, read-only, res_ari_events, the
// application's subscription and event filter, the channelvars of channel
// snapshots, the version. It connects once (one events socket under
// cfg.App, for at most wait while no channel snapshot has been seen) and
// makes no request that could change a call: GETs, the socket, and one
// POST to a resource that does not exist (readOnlyProbe).
//
// It returns an error only when cfg is invalid, before any I/O; everything
// found on the PBX, failures included, is in the Report. AgentOf is not
// needed. Every request is bounded by cfg.RESTTimeout and ctx.
//
// The socket takes the application over from any client holding it: run
// under the daemon's app name, a running screenpopd reconnects once.
func Check(ctx context.Context, cfg Config, wait time.Duration) (Report, error) {
	if cfg.AgentOf == nil {
		cfg.AgentOf = func(string) (string, bool) { return "", false }
	}
	s, err := New(cfg, nil, prometheus.NewRegistry())
	if err != nil {
		return Report{}, err
	}
	c := &checker{s: s, app: s.cfg.App, keys: map[string]bool{}}
	c.run(ctx, wait)
	sort.SliceStable(c.lines, func(i, j int) bool {
		return slices.Index(checkOrder, c.lines[i].group) < slices.Index(checkOrder, c.lines[j].group)
	})
	rep := Report{URL: s.cfg.URL, App: s.cfg.App, Lines: make([]CheckLine, 0, len(c.lines))}
	for _, l := range c.lines {
		rep.Lines = append(rep.Lines, l.CheckLine)
	}
	return rep, nil
}

type checker struct {
	s     *Source
	app   string
	lines []groupedLine

	// What the observation saw.
	listed    int             // channel snapshots from GET /ari/channels
	streamed  int             // channel snapshots in events
	withVars  int             // snapshots that had a channelvars object
	keys      map[string]bool // channelvars names seen (leading underscores dropped)
	replaced  bool            // an ApplicationReplaced arrived
	socketErr error           // the socket ended during the observation
}

type groupedLine struct {
	CheckLine
	group string
}

func (c *checker) add(group, check string, status CheckStatus, found, fix string) {
	c.lines = append(c.lines, groupedLine{CheckLine{Check: check, Status: status, Found: found, Fix: fix}, group})
}

func (c *checker) line(check string, status CheckStatus, found, fix string) {
	c.add(check, check, status, found, fix)
}

// appJSON is the application as Check reads it: the event filter fields
// exist since Asterisk 13.26/16.3, so absent means no filter at all.
type appJSON struct {
	application
	EventsAllowed    *[]eventTypeJSON `json:"events_allowed"`
	EventsDisallowed *[]eventTypeJSON `json:"events_disallowed"`
}

type eventTypeJSON struct {
	Type string `json:"type"`
}

func (c *checker) run(ctx context.Context, wait time.Duration) {
	u := c.s.cfg.URL
	notARI := "enable ARI: res_ari loaded, [general] enabled = yes in ari.conf, enabled = yes in http.conf; if http.conf sets a prefix, url must include it (http://pbx:8088/PREFIX)"

	// 1, 2 and 9: one GET tells whether Asterisk answers, whether the user
	// is accepted (authentication comes before anything else in res_ari)
	// and which version runs.
	var info struct {
		System struct {
			Version string `json:"version"`
		} `json:"system"`
	}
	err := c.s.rest(ctx, http.MethodGet, "asterisk/info", nil, &info)
	var he *httpError
	switch {
	case err != nil && !errors.As(err, &he):
		c.line(CheckReachable, CheckFail, fmt.Sprintf("no answer from %s: %v", u, err),
			"check url (host, and the port of http.conf bindport; https:// if Asterisk serves TLS), that Asterisk's HTTP server runs "+
				"(http.conf [general] enabled = yes, bindaddr; asterisk -rx \"http show status\"), and that a firewall admits this host")
		return
	case he != nil && he.Status == http.StatusNotFound && he.Message == "":
		c.line(CheckReachable, CheckFail, fmt.Sprintf("an HTTP server answers at %s, but not ARI (%v)", u, err), notARI)
		return
	}
	c.line(CheckReachable, CheckOK, "ARI answers at "+u, "")
	switch {
	case he == nil:
		c.line(CheckUser, CheckOK, fmt.Sprintf("ARI user %q accepted", c.s.cfg.User), "")
	case he.Status == http.StatusUnauthorized:
		c.line(CheckUser, CheckFail, fmt.Sprintf("ARI user %q rejected (HTTP 401)", c.s.cfg.User),
			fmt.Sprintf("check user/password in ari.conf ([%s] type = user, password, password_format) and the environment variable named by password_env; also that this host is in the user's permit", c.s.cfg.User))
		return
	case he.Status == http.StatusForbidden:
		c.line(CheckUser, CheckFail, fmt.Sprintf("ARI user %q refused: %v", c.s.cfg.User, err),
			fmt.Sprintf("admit this host in ari.conf [%s] permit = ADDRESS/MASK (deny/permit lines), then asterisk -rx \"module reload res_ari.so\"", c.s.cfg.User))
		return
	case he.Status == http.StatusServiceUnavailable:
		c.line(CheckUser, CheckFail, fmt.Sprintf("Asterisk refuses requests: %v", err), "Asterisk is still starting (not fully booted): run the check again in a minute")
		return
	case he.Status == http.StatusNotFound:
		// ARI answered, so the user passed: only this resource is missing.
		c.line(CheckUser, CheckOK, fmt.Sprintf("ARI user %q accepted", c.s.cfg.User), "")
	default:
		c.line(CheckUser, CheckFail, fmt.Sprintf("ARI refused the user's first request: %v", err), "see Asterisk's log (asterisk -rx \"core set verbose 3\") for why")
		return
	}
	c.version(info.System.Version, err)

	c.readOnly(ctx)

	// The application as it was before this connection: whether
	// subscribeAll can hold depends on it.
	var before appJSON
	existed := c.s.rest(ctx, http.MethodGet, "applications/"+url.PathEscape(c.app), nil, &before) == nil

	conn, err := c.s.dial(ctx)
	if err != nil {
		if errors.As(err, &he) && he.Status == http.StatusNotFound {
			c.line(CheckEventsSocket, CheckFail, "GET /ari/events (WebSocket upgrade): HTTP 404: nothing serves the events socket",
				"load res_ari_events (modules.conf: load = res_ari_events.so) / enable ARI in ari.conf ([general] enabled = yes)")
		} else {
			c.line(CheckEventsSocket, CheckFail, fmt.Sprintf("cannot open the events socket: %v", err),
				"check that res_ari_events and res_http_websocket are loaded (asterisk -rx \"module show like ari\") and that no proxy between here and Asterisk refuses WebSocket upgrades")
		}
		c.line(CheckSubscription, CheckInfo, "not checked: needs the events socket", "")
		c.line(CheckEventFilter, CheckInfo, "not checked: needs the events socket", "")
		c.channelVars(ctx, nil, nil, 0)
		c.line(CheckWriteTimeout, CheckInfo, WriteTimeoutAdvice, "")
		return
	}
	// Read at once: Asterisk drops a socket whose reader stalls.
	q := c.s.newFrameQueue()
	readerDone := make(chan struct{})
	var readErr error
	go func() {
		defer close(readerDone)
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				readErr = err
				return
			}
			if !q.Push(frame) {
				readErr = fmt.Errorf("more than %d events queued: the check stopped reading", q.Len())
				return
			}
		}
	}()
	closed := false
	closeSocket := func() {
		if closed {
			return
		}
		closed = true
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		_ = conn.Close()
		<-readerDone
	}
	defer closeSocket()
	c.line(CheckEventsSocket, CheckOK, "the events socket opened (GET /ari/events?app="+c.app+"&subscribeAll=true)", "")

	after := c.subscription(ctx, existed, before)
	c.channelVars(ctx, q, readerDone, wait)
	select {
	case <-readerDone:
		if c.socketErr == nil && !closed {
			c.socketErr = readErr
		}
	default:
	}
	if c.replaced {
		c.line(CheckSubscription, CheckInfo,
			fmt.Sprintf("another client connected as application %q during the check and took it over (ApplicationReplaced); a running screenpopd does so when this check has taken the name from it", c.app),
			"nothing if that was screenpopd (it reconnected and resynced); otherwise give screenpop an app name no other ARI client uses")
	} else if c.socketErr != nil {
		c.line(CheckEventsSocket, CheckWarn, fmt.Sprintf("the events socket closed during the check: %v", c.socketErr),
			"see Asterisk's log; raise ari.conf [general] websocket_write_timeout if it says the write timed out")
	}
	c.eventFilter(after)
	c.line(CheckWriteTimeout, CheckInfo, WriteTimeoutAdvice, "")
}

// readOnly tells a read-only user by a write nothing can serve.
func (c *checker) readOnly(ctx context.Context) {
	err := c.s.rest(ctx, http.MethodPost, readOnlyProbe, nil, &struct{}{})
	var he *httpError
	switch {
	case errors.As(err, &he) && he.Status == http.StatusForbidden && he.Message == "Write access denied":
		c.line(CheckReadOnly, CheckOK, "read_only = yes: a POST to a resource that does not exist was refused with 403 Write access denied", "")
	case errors.As(err, &he) && (he.Status == http.StatusNotFound || he.Status == http.StatusMethodNotAllowed):
		c.line(CheckReadOnly, CheckWarn,
			fmt.Sprintf("user %q has write access: a POST to a resource that does not exist got HTTP %d, not 403 (nothing was changed)", c.s.cfg.User, he.Status),
			fmt.Sprintf("set read_only = yes in ari.conf [%s]: screenpop only needs GETs (and POST /applications/{app}/subscription only when the app pre-exists)", c.s.cfg.User))
	default:
		c.line(CheckReadOnly, CheckInfo, "read_only cannot be verified without a write; screenpop only needs GETs (and POST /applications/{app}/subscription only when the app pre-exists)", "")
	}
}

// subscription checks that the application gets every channel's and
// bridge's events, and returns it as read after connecting.
func (c *checker) subscription(ctx context.Context, existed bool, before appJSON) *appJSON {
	if _, err := c.s.application(ctx); err != nil {
		c.line(CheckSubscription, CheckFail, fmt.Sprintf("GET /ari/applications/%s: %v", c.app, err),
			"screenpopd reads its application after every connect: check that res_ari_applications is loaded (asterisk -rx \"module show like ari\")")
		return nil
	}
	var app appJSON
	if err := c.s.rest(ctx, http.MethodGet, "applications/"+url.PathEscape(c.app), nil, &app); err != nil {
		c.line(CheckSubscription, CheckFail, fmt.Sprintf("GET /ari/applications/%s: %v", c.app, err),
			"screenpopd reads its application after every connect: check that res_ari_applications is loaded")
		return nil
	}
	all := app.observesAll()
	readOnly := slices.ContainsFunc(c.lines, func(l groupedLine) bool { return l.group == CheckReadOnly && l.Status == CheckOK })
	switch {
	case all && !existed:
		c.line(CheckSubscription, CheckOK, fmt.Sprintf("application %q created by this connection; subscribeAll holds (%s, %s)", c.app, allChannels, allBridges), "")
	case all:
		c.line(CheckSubscription, CheckOK, fmt.Sprintf("application %q existed before this connection (a running screenpopd, or another client with the same name) and gets every channel's and bridge's events", c.app), "")
	case existed && readOnly:
		c.line(CheckSubscription, CheckFail,
			fmt.Sprintf("application %q existed before this connection without subscribeAll (channel_ids %v, bridge_ids %v), and the read-only user cannot subscribe it: screenpopd would stay not ready", c.app, app.ChannelIDs, app.BridgeIDs),
			"use an app name no other client uses (app: in the telephony entry), or give the user write access (read_only = no)")
	case existed:
		c.line(CheckSubscription, CheckWarn,
			fmt.Sprintf("application %q existed before this connection without subscribeAll (channel_ids %v, bridge_ids %v): screenpopd subscribes it explicitly (POST /applications/%s/subscription) on every connect", c.app, app.ChannelIDs, app.BridgeIDs, c.app),
			"use an app name no other client uses (app: in the telephony entry), or give the user write access (read_only = no)")
	default:
		c.line(CheckSubscription, CheckFail,
			fmt.Sprintf("subscribeAll did not hold although this connection created application %q (channel_ids %v, bridge_ids %v)", c.app, app.ChannelIDs, app.BridgeIDs),
			fmt.Sprintf("upgrade Asterisk (subscribeAll needs 13.6 or later; %d or later recommended)", MinAsteriskMajor))
	}
	return &app
}

// channelVars looks at channel snapshots (the live channels, then the
// events of up to wait) for the variables screenpop reads.
func (c *checker) channelVars(ctx context.Context, q *queue.Bounded[[]byte], readerDone <-chan struct{}, wait time.Duration) {
	channels, err := c.s.channels(ctx)
	if err != nil {
		c.line(CheckChannels, CheckFail, err.Error(),
			"screenpopd reads the channel list after every connect: check that res_ari_channels is loaded (modules.conf: load = res_ari_channels.so)")
	} else {
		c.line(CheckChannels, CheckOK, fmt.Sprintf("GET /ari/channels: %d live channel(s)", len(channels)), "")
	}
	for _, ch := range channels {
		c.listed++
		c.snapshot(ch.ChannelVars)
	}
	if q != nil && c.listed == 0 && wait > 0 {
		c.observe(ctx, q, readerDone, wait)
	}
	c.reportVars(wait, q != nil)
}

// observe reads events until the first channel snapshot, the end of the
// window, a takeover of the application, the end of the socket or of ctx.
func (c *checker) observe(ctx context.Context, q *queue.Bounded[[]byte], readerDone <-chan struct{}, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		for _, f := range q.Take() {
			c.frame(f)
		}
		if c.streamed > 0 || c.replaced {
			// One snapshot shows the channelvars (the same on every
			// channel); a replaced socket gets no more events.
			return
		}
		select {
		case <-q.Ready():
		case <-readerDone:
			for _, f := range q.Take() {
				c.frame(f)
			}
			return
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// frame takes the channel snapshots out of one event (channel, peer,
// caller, transfer legs...: every member that is a channel snapshot).
func (c *checker) frame(f []byte) {
	var ev map[string]json.RawMessage
	if json.Unmarshal(f, &ev) != nil {
		return
	}
	if typ, _ := eventType(f); typ == "ApplicationReplaced" {
		c.replaced = true
	}
	for _, raw := range ev {
		if len(raw) == 0 || raw[0] != '{' {
			continue
		}
		var snap struct {
			ID          string            `json:"id"`
			Dialplan    json.RawMessage   `json:"dialplan"`
			ChannelVars map[string]string `json:"channelvars"`
		}
		if json.Unmarshal(raw, &snap) != nil || snap.ID == "" || snap.Dialplan == nil {
			continue // not a channel snapshot (a bridge, a caller ID...)
		}
		c.streamed++
		c.snapshot(snap.ChannelVars)
	}
}

func (c *checker) snapshot(vars map[string]string) {
	if vars != nil {
		c.withVars++
	}
	for k := range vars {
		c.keys[strings.TrimLeft(k, "_")] = true
	}
}

func (c *checker) reportVars(wait time.Duration, socket bool) {
	seen := c.listed + c.streamed
	if seen == 0 {
		where := "no live channel (GET /ari/channels)"
		if socket && wait > 0 {
			where += fmt.Sprintf(" and no channel event within %s", wait)
		}
		c.line(CheckChannelVars, CheckInfo, "no channel seen: "+where+", so channelvars cannot be checked",
			fmt.Sprintf("place a test call (into an inbound context) and run the check again with a longer -wait (e.g. -wait %s), calling during the wait", max(wait*10, time.Minute)))
		return
	}
	names := make([]string, 0, len(c.keys))
	for k := range c.keys {
		names = append(names, k)
	}
	sort.Strings(names)
	summary := fmt.Sprintf("%d channel snapshot(s) seen (%d listed, %d in events); ", seen, c.listed, c.streamed)
	if c.withVars == 0 {
		summary += "none carries channelvars: ari.conf [general] channelvars is empty"
	} else {
		summary += "channelvars: " + strings.Join(names, ", ")
	}
	c.line(CheckChannelVars, CheckInfo, summary, "")

	check := CheckChannelVars + " "
	switch {
	case c.keys["CALLERID(pres)"]:
		c.add(CheckChannelVars, check+"CALLERID(pres)", CheckOK, "CALLERID(pres) is in every channel snapshot: withheld numbers are known from the first event", "")
	case c.keys["SCREENPOP_PRES"]:
		c.add(CheckChannelVars, check+"CALLERID(pres)", CheckOK, "SCREENPOP_PRES (the dialplan's copy of CALLERID(pres)) is in every channel snapshot", "")
	default:
		c.add(CheckChannelVars, check+"CALLERID(pres)", CheckWarn,
			"neither CALLERID(pres) nor SCREENPOP_PRES is in the snapshots: whether a caller withheld the number is only known from the dialplan's Set(__SCREENPOP_PRES=...) events, and not at all after a reconnect (where it is unknown, screenpop withholds the number by default)",
			"add CALLERID(pres) to channelvars in ari.conf [general], then asterisk -rx \"module reload res_ari.so\"")
	}
	switch {
	case c.keys["SCREENPOP_CALL"]:
		c.add(CheckChannelVars, check+"SCREENPOP_CALL", CheckOK, "SCREENPOP_CALL (the dialplan's call id) is in every channel snapshot: agent legs are tied to their caller after a reconnect too", "")
	case c.keys["CHANNEL(linkedid)"]:
		c.add(CheckChannelVars, check+"SCREENPOP_CALL", CheckOK, "CHANNEL(linkedid) is in every channel snapshot (screenpop's call id when the dialplan sets no SCREENPOP_CALL): agent legs are tied to their caller after a reconnect too", "")
	default:
		c.add(CheckChannelVars, check+"SCREENPOP_CALL", CheckWarn,
			"neither SCREENPOP_CALL nor CHANNEL(linkedid) is in the snapshots: after a reconnect, agent legs (queue Local/ channels) cannot be tied to their caller",
			"add CHANNEL(linkedid) to channelvars in ari.conf [general] (or SCREENPOP_CALL, with Set(__SCREENPOP_CALL=${UNIQUEID}) in the inbound context as in configs/asterisk/extensions.conf)")
	}
	if c.keys["SCREENPOP_DID"] {
		c.add(CheckChannelVars, check+"SCREENPOP_DID", CheckOK, "SCREENPOP_DID is in every channel snapshot: the card shows the dialled line after a reconnect too", "")
	} else {
		c.add(CheckChannelVars, check+"SCREENPOP_DID", CheckInfo,
			"SCREENPOP_DID is not in the snapshots: the card shows the extension the call came in at (none for s), and after a reconnect the one the channel is at then",
			"to show the dialled line exactly: Set(__SCREENPOP_DID=${EXTEN}) in the inbound context (configs/asterisk/extensions.conf) and add SCREENPOP_DID to channelvars in ari.conf [general]")
	}
}

// eventFilter checks that the application's event filter (Asterisk's
// rule: a disallowed type never passes; a non-empty allowed list lets only
// its types pass) keeps every type screenpop needs.
func (c *checker) eventFilter(app *appJSON) {
	if app == nil {
		c.line(CheckEventFilter, CheckInfo, "not checked: the application could not be read", "")
		return
	}
	if app.EventsAllowed == nil && app.EventsDisallowed == nil {
		c.line(CheckEventFilter, CheckOK, "this Asterisk reports no event filter (before 13.26/16.3): nothing is filtered", "")
		return
	}
	types := func(p *[]eventTypeJSON) []string {
		if p == nil {
			return nil
		}
		var out []string
		for _, e := range *p {
			out = append(out, e.Type)
		}
		return out
	}
	allowed, disallowed := types(app.EventsAllowed), types(app.EventsDisallowed)
	var dropped []string
	for _, t := range NeededEvents {
		if slices.Contains(disallowed, t) || (len(allowed) > 0 && !slices.Contains(allowed, t)) {
			dropped = append(dropped, t)
		}
	}
	switch {
	case len(dropped) > 0:
		c.line(CheckEventFilter, CheckFail,
			fmt.Sprintf("the event filter of application %q drops events screenpop needs: %s (events_allowed %v, events_disallowed %v)", c.app, strings.Join(dropped, ", "), allowed, disallowed),
			fmt.Sprintf("remove the filter another client set (PUT /ari/applications/%s/eventFilter with body {}; screenpop never sets one), or give screenpop an app name no other client uses", c.app))
	case len(allowed)+len(disallowed) == 0:
		c.line(CheckEventFilter, CheckOK, "no event filter: every event type reaches the application", "")
	default:
		c.line(CheckEventFilter, CheckOK, fmt.Sprintf("the event filter (events_allowed %v, events_disallowed %v) lets every type screenpop needs through", allowed, disallowed), "")
	}
}

var versionNumber = regexp.MustCompile(`(\d+)\.(\d+)`)

// asteriskMajor reads the major version of Asterisk's version string
// ("20.20.1", "18.9-cert5", "certified/18.9-cert5"); false for one
// without a number, such as a GIT-master build.
func asteriskMajor(v string) (int, bool) {
	m := versionNumber.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	return n, err == nil
}

func (c *checker) version(v string, infoErr error) {
	if infoErr != nil {
		c.line(CheckVersion, CheckInfo, fmt.Sprintf("unknown: %v", infoErr), "load res_ari_asterisk to let ARI report it (or: asterisk -rx \"core show version\")")
		return
	}
	major, ok := asteriskMajor(v)
	rule := fmt.Sprintf("rule: major version below %d warns", MinAsteriskMajor)
	switch {
	case !ok:
		c.line(CheckVersion, CheckInfo, fmt.Sprintf("Asterisk %q: no version number to compare (%s)", v, rule), "")
	case major < MinAsteriskMajor:
		c.line(CheckVersion, CheckWarn, fmt.Sprintf("Asterisk %s is older than %d (%s): ARI lacks parts screenpop relies on (channelvars in snapshots came in 14.2, event filters in 16.3) and the version is out of support", v, MinAsteriskMajor, rule),
			fmt.Sprintf("upgrade Asterisk to %d or later (screenpop is tested against 20)", MinAsteriskMajor))
	default:
		c.line(CheckVersion, CheckOK, fmt.Sprintf("Asterisk %s (%d or later required; %s)", v, MinAsteriskMajor, rule), "")
	}
}
