package ari

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

func checkConfig(srv *fakeari.Server) Config {
	return Config{URL: srv.URL(), User: fakeari.DefaultUser, Password: fakeari.DefaultPassword, App: "screenpop", RESTTimeout: patience}
}

// runCheck runs Check with a window of wait and fails the test on a
// config error or on any request that could have touched a call.
func runCheck(t *testing.T, srv *fakeari.Server, cfg Config, wait time.Duration) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*patience)
	defer cancel()
	rep, err := Check(ctx, cfg, wait)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Errorf("the check made requests that could touch a call: %v", v)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := json.MarshalIndent(rep, "", "  ")
			t.Logf("report:\n%s", b)
		}
	})
	return rep
}

// line finds the report's line for check; the test fails if there is none.
func line(t *testing.T, rep Report, check string) CheckLine {
	t.Helper()
	for _, l := range rep.Lines {
		if l.Check == check {
			return l
		}
	}
	t.Fatalf("no %q line", check)
	return CheckLine{}
}

func expectLine(t *testing.T, rep Report, check string, status CheckStatus, found ...string) CheckLine {
	t.Helper()
	l := line(t, rep, check)
	if l.Status != status {
		t.Errorf("%s: status %s, want %s (%s)", check, l.Status, status, l.Found)
	}
	for _, f := range found {
		if !strings.Contains(l.Found+" | fix: "+l.Fix, f) {
			t.Errorf("%s: %q / fix %q lacks %q", check, l.Found, l.Fix, f)
		}
	}
	return l
}

// channelJSON is a channel snapshot as Asterisk 20 lists it.
func channelJSON(id string, vars map[string]string) json.RawMessage {
	ch := map[string]any{
		"id": id, "name": "PJSIP/carrier-00000001", "state": "Ring", "protocol_id": "",
		"caller":    map[string]string{"name": "Jane Doe", "number": "+4930123456"},
		"connected": map[string]string{"name": "", "number": ""}, "accountcode": "",
		"dialplan":     map[string]any{"context": "from-carrier", "exten": "100", "priority": 1, "app_name": "", "app_data": ""},
		"creationtime": "2026-11-23T09:35:51.732+0000", "language": "en",
	}
	if vars != nil {
		ch["channelvars"] = vars
	}
	b, err := json.Marshal(ch)
	if err != nil {
		panic(err)
	}
	return b
}

func TestReadOnlyProbeIsTheFakesHarmlessPath(t *testing.T) {
	if want := "/ari/" + readOnlyProbe; fakeari.ReadOnlyProbePath != want {
		t.Fatalf("fakeari allows %s, the check probes %s", fakeari.ReadOnlyProbePath, want)
	}
}

// A PBX set up as configs/asterisk says: every line ok (or info where ARI
// cannot tell), nothing a FAIL.
func TestCheckHealthyPBX(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser())
	srv.SetChannels(channelJSON("1795426551.0", map[string]string{
		"SCREENPOP_DID": "100", "SCREENPOP_CALL": "1795426551.0", "SCREENPOP_PRES": "allowed_not_screened",
	}))
	rep := runCheck(t, srv, checkConfig(srv), patience)
	if rep.Failed() {
		t.Errorf("a healthy PBX failed the check")
	}
	expectLine(t, rep, CheckReachable, CheckOK, srv.URL())
	expectLine(t, rep, CheckUser, CheckOK, `"screenpop" accepted`)
	expectLine(t, rep, CheckReadOnly, CheckOK, "read_only = yes")
	expectLine(t, rep, CheckEventsSocket, CheckOK)
	expectLine(t, rep, CheckSubscription, CheckOK, "created by this connection", "subscribeAll holds")
	expectLine(t, rep, CheckChannels, CheckOK, "1 live channel")
	expectLine(t, rep, CheckChannelVars, CheckInfo, "1 channel snapshot(s) seen (1 listed, 0 in events)", "SCREENPOP_CALL, SCREENPOP_DID, SCREENPOP_PRES")
	expectLine(t, rep, "channelvars CALLERID(pres)", CheckOK, "SCREENPOP_PRES")
	expectLine(t, rep, "channelvars SCREENPOP_CALL", CheckOK)
	expectLine(t, rep, "channelvars SCREENPOP_DID", CheckOK)
	expectLine(t, rep, CheckEventFilter, CheckOK, "no event filter")
	expectLine(t, rep, CheckWriteTimeout, CheckInfo, "cannot be read over ARI", "≥ 1000")
	expectLine(t, rep, CheckVersion, CheckOK, "Asterisk 20.20.1", "rule: major version below 16 warns")

	var order []string
	for _, l := range rep.Lines {
		order = append(order, l.Check)
	}
	want := []string{CheckReachable, CheckUser, CheckReadOnly, CheckEventsSocket, CheckSubscription, CheckChannels,
		CheckChannelVars, "channelvars CALLERID(pres)", "channelvars SCREENPOP_CALL", "channelvars SCREENPOP_DID",
		CheckEventFilter, CheckWriteTimeout, CheckVersion}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("lines in order\n  %v\nwant\n  %v", order, want)
	}
	// Connected once, and only read (the probe is a write nothing serves).
	if n := srv.Accepted(); n != 1 {
		t.Errorf("%d event sockets, want 1", n)
	}
	for _, r := range srv.Requests() {
		if !strings.HasPrefix(r, "GET ") && r != "POST "+fakeari.ReadOnlyProbePath {
			t.Errorf("request %s", r)
		}
	}
}

// A user with write access works, but more than screenpop needs.
func TestCheckUserWithWriteAccess(t *testing.T) {
	srv := fakeari.New(t)
	rep := runCheck(t, srv, checkConfig(srv), 0)
	l := expectLine(t, rep, CheckReadOnly, CheckWarn, "has write access", "nothing was changed")
	if !strings.Contains(l.Fix, "read_only = yes") {
		t.Errorf("fix %q", l.Fix)
	}
	if rep.Failed() {
		t.Errorf("write access is not a failure")
	}
}

func TestCheckAsteriskDown(t *testing.T) {
	srv := fakeari.New(t)
	srv.Down()
	rep := runCheck(t, srv, checkConfig(srv), time.Second)
	expectLine(t, rep, CheckReachable, CheckFail, "no answer from "+srv.URL(), "dial tcp", "http.conf")
	if len(rep.Lines) != 1 || !rep.Failed() {
		t.Errorf("lines %v, want the one FAIL", rep.Lines)
	}
}

func TestCheckWrongPassword(t *testing.T) {
	srv := fakeari.New(t)
	cfg := checkConfig(srv)
	cfg.Password = "wrong"
	rep := runCheck(t, srv, cfg, time.Second)
	expectLine(t, rep, CheckReachable, CheckOK)
	expectLine(t, rep, CheckUser, CheckFail, "HTTP 401", "ari.conf", "password_env")
	if len(rep.Lines) != 2 {
		t.Errorf("lines %v, want reachable and user only", rep.Lines)
	}
	if srv.Accepted() != 0 {
		t.Errorf("the check opened a socket with a rejected user")
	}
}

// res_ari_events not loaded: the check says so, and so does the daemon.
func TestCheckWithoutEventsModule(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser(), fakeari.WithoutEventsModule())
	rep := runCheck(t, srv, checkConfig(srv), time.Second)
	expectLine(t, rep, CheckEventsSocket, CheckFail, "HTTP 404",
		"load res_ari_events (modules.conf: load = res_ari_events.so) / enable ARI in ari.conf")
	expectLine(t, rep, CheckSubscription, CheckInfo, "not checked")
	expectLine(t, rep, CheckVersion, CheckOK)
	if !rep.Failed() {
		t.Error("not failed")
	}

	h := start(t, srv, nil)
	err := h.waitReadiness("failing", func(err error) bool { return err != nil && strings.Contains(err.Error(), "HTTP 404") })
	if !strings.Contains(err.Error(), "res_ari_events") || !strings.Contains(err.Error(), "load = res_ari_events.so") {
		t.Errorf("Ready() = %v: does not name res_ari_events", err)
	}
}

// The application existed without subscribeAll: the daemon works around
// it with write access, and cannot with a read-only user.
func TestCheckPreexistingApplication(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithExistingApp("screenpop"))
	rep := runCheck(t, srv, checkConfig(srv), 0)
	expectLine(t, rep, CheckSubscription, CheckWarn, "existed before this connection without subscribeAll",
		"use an app name no other client uses", "give the user write access")
	if srv.Subscriptions("screenpop") != 0 {
		t.Error("the check subscribed the application: it must change nothing")
	}

	ro := fakeari.New(t, fakeari.WithExistingApp("screenpop"), fakeari.WithReadOnlyUser())
	rep = runCheck(t, ro, checkConfig(ro), 0)
	expectLine(t, rep, CheckSubscription, CheckFail, "read-only user cannot subscribe it", "use an app name no other client uses")
}

func TestCheckEventFilter(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser(),
		fakeari.WithEventFilter("screenpop", nil, []string{"ChannelVarset", "ChannelUserevent", "Dial"}))
	rep := runCheck(t, srv, checkConfig(srv), 0)
	l := expectLine(t, rep, CheckEventFilter, CheckFail, "Dial, ChannelVarset", "eventFilter")
	if strings.Contains(l.Found, "drops events screenpop needs: ChannelUserevent") || strings.Contains(l.Found, "ChannelVarset, ChannelUserevent") {
		t.Errorf("named a type screenpop does not need: %s", l.Found)
	}
	// It existed with subscribeAll: fine, a running screenpopd's perhaps.
	expectLine(t, rep, CheckSubscription, CheckOK, "existed before this connection")

	allowList := fakeari.New(t, fakeari.WithEventFilter("screenpop", []string{"StasisStart", "StasisEnd", "ChannelCreated"}, nil))
	rep = runCheck(t, allowList, checkConfig(allowList), 0)
	l = expectLine(t, rep, CheckEventFilter, CheckFail, "ChannelDestroyed", "ChannelLeftBridge")
	if strings.Contains(l.Found, "needs: ChannelCreated") {
		t.Errorf("ChannelCreated is allowed: %s", l.Found)
	}

	harmless := fakeari.New(t, fakeari.WithEventFilter("screenpop", nil, []string{"ChannelTalkingStarted"}))
	rep = runCheck(t, harmless, checkConfig(harmless), 0)
	expectLine(t, rep, CheckEventFilter, CheckOK, "lets every type screenpop needs through")
}

// No call during the window: the check says so and what to do.
func TestCheckNoChannelSeen(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser())
	rep := runCheck(t, srv, checkConfig(srv), 20*time.Millisecond)
	expectLine(t, rep, CheckChannelVars, CheckInfo, "no channel seen", "within 20ms", "place a test call", "longer -wait")
	if rep.Failed() {
		t.Error("no channel is no failure")
	}
	for _, l := range rep.Lines {
		if strings.HasPrefix(l.Check, CheckChannelVars+" ") {
			t.Errorf("line %s without any snapshot", l.Check)
		}
	}
}

// A test call placed during the window: its events bring the snapshots,
// with channelvars as ari.conf lists them, and the check ends with the
// first one instead of waiting out the window.
func TestCheckChannelVarsFromEvents(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser(), fakeari.WithChannelVars("SCREENPOP_DID", "SCREENPOP_CAL"))
	lines := recording(t, "answered.jsonl")
	type result struct {
		rep Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := Check(context.Background(), checkConfig(srv), 10*patience)
		done <- result{rep, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := srv.WaitAccepted(ctx, 1); err != nil {
		t.Fatal(err)
	}
	var rep Report
	deadline := time.NewTimer(patience)
	defer deadline.Stop()
	sent := 0
send:
	for {
		select {
		case r := <-done:
			if r.err != nil {
				t.Fatalf("Check: %v", r.err)
			}
			rep = r.rep
			break send
		case <-deadline.C:
			t.Fatal("the check did not end after the call's events")
		default:
		}
		if sent < len(lines) {
			srv.Send(lines[sent])
			sent++
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	expectLine(t, rep, CheckChannelVars, CheckInfo, "in events", "SCREENPOP_CAL, SCREENPOP_DID")
	expectLine(t, rep, "channelvars SCREENPOP_DID", CheckOK)
	expectLine(t, rep, "channelvars SCREENPOP_CALL", CheckWarn, "neither SCREENPOP_CALL nor CHANNEL(linkedid)",
		"add CHANNEL(linkedid) to channelvars", "Set(__SCREENPOP_CALL=${UNIQUEID})")
	expectLine(t, rep, "channelvars CALLERID(pres)", CheckWarn, "", "add CALLERID(pres) to channelvars in ari.conf [general]")
	if rep.Failed() {
		t.Error("missing channelvars are warnings")
	}
}

// Run under the name of a running screenpopd, the check takes the
// application from it; the daemon takes it back, says so, and is ready
// again.
func TestCheckWhileTheDaemonRuns(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithReadOnlyUser())
	h := start(t, srv, nil)
	h.waitReady()
	rep := runCheck(t, srv, checkConfig(srv), 10*patience)
	expectLine(t, rep, CheckSubscription, CheckOK, "existed before this connection")
	var replaced bool
	for _, l := range rep.Lines {
		if l.Check == CheckSubscription && strings.Contains(l.Found, "took it over (ApplicationReplaced)") {
			replaced = l.Status == CheckInfo
		}
	}
	if !replaced {
		t.Error("no info line about the takeover")
	}
	expectLine(t, rep, CheckChannelVars, CheckInfo, "no channel seen")
	if rep.Failed() {
		t.Error("failed")
	}
	h.waitReady()
}

// Snapshots without any channelvars: ari.conf lists none.
func TestCheckNoChannelVars(t *testing.T) {
	srv := fakeari.New(t)
	srv.SetChannels(channelJSON("1.0", nil), channelJSON("2.0", nil))
	rep := runCheck(t, srv, checkConfig(srv), patience)
	expectLine(t, rep, CheckChannelVars, CheckInfo, "2 channel snapshot(s) seen", "channelvars is empty")
	for _, v := range []string{"CALLERID(pres)", "SCREENPOP_CALL"} {
		expectLine(t, rep, "channelvars "+v, CheckWarn, "", "to channelvars in ari.conf [general]")
	}
	expectLine(t, rep, "channelvars SCREENPOP_DID", CheckInfo, "the extension the call came in at", "add SCREENPOP_DID to channelvars")
	if rep.Failed() {
		t.Error("missing channelvars are no failure")
	}

	// A stock PBX with channelvars = CALLERID(pres),CHANNEL(linkedid): the
	// functions themselves are as good as the dialplan's variables.
	stock := fakeari.New(t)
	stock.SetChannels(channelJSON("1.0", map[string]string{"CALLERID(pres)": "prohib_passed_screen", "CHANNEL(linkedid)": "1.0"}))
	rep = runCheck(t, stock, checkConfig(stock), patience)
	expectLine(t, rep, "channelvars CALLERID(pres)", CheckOK, "from the first event")
	expectLine(t, rep, "channelvars SCREENPOP_CALL", CheckOK, "CHANNEL(linkedid)")
}

func TestCheckVersion(t *testing.T) {
	for _, tc := range []struct {
		version string
		status  CheckStatus
	}{
		{"20.20.1", CheckOK},
		{"16.0.0", CheckOK},
		{"certified/18.9-cert5", CheckOK},
		{"15.7.4", CheckWarn},
		{"13.38.3", CheckWarn},
		{"GIT-master-abc123", CheckInfo},
	} {
		t.Run(tc.version, func(t *testing.T) {
			srv := fakeari.New(t, fakeari.WithAsteriskVersion(tc.version))
			rep := runCheck(t, srv, checkConfig(srv), 0)
			l := expectLine(t, rep, CheckVersion, tc.status, tc.version)
			if tc.status == CheckWarn && !strings.Contains(l.Fix, "upgrade Asterisk to 16") {
				t.Errorf("fix %q", l.Fix)
			}
		})
	}
}

// Invalid configuration is an error before any I/O; AgentOf is not needed.
func TestCheckConfigErrors(t *testing.T) {
	if _, err := Check(context.Background(), Config{URL: "pbx:8088", User: "u", Password: "p", App: "a"}, 0); err == nil {
		t.Error("a URL without scheme passed")
	}
	if _, err := Check(context.Background(), Config{URL: "http://127.0.0.1:1", User: "u", Password: "p"}, 0); err == nil || !strings.Contains(err.Error(), "app is required") {
		t.Errorf("no app: %v", err)
	}
}

// The fake's channelvars follow the channel's variables like Asterisk's:
// listed names only, set by ChannelVarset (inherited ones too), "" while
// unset.
func TestFakeChannelVarsFollowVarset(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithChannelVars("SCREENPOP_DID", "SCREENPOP_CALL"))
	created := recording(t, "answered.jsonl")[0]
	srv.Send(created)
	srv.SendJSON(map[string]any{
		"type": "ChannelVarset", "variable": "__SCREENPOP_DID", "value": "100",
		"channel": json.RawMessage(channelJSON("1795426551.0", nil)),
	})
	srv.SendJSON(map[string]any{
		"type": "ChannelVarset", "variable": "NOT_LISTED", "value": "x",
		"channel": json.RawMessage(channelJSON("1795426551.0", nil)),
	})
	list := srv.Channels()
	if len(list) != 1 {
		t.Fatalf("%d channels, want 1", len(list))
	}
	var ch struct {
		ChannelVars map[string]string `json:"channelvars"`
	}
	if err := json.Unmarshal(list[0], &ch); err != nil {
		t.Fatal(err)
	}
	if len(ch.ChannelVars) != 2 || ch.ChannelVars["SCREENPOP_DID"] != "100" || ch.ChannelVars["SCREENPOP_CALL"] != "" {
		t.Errorf("channelvars %v, want SCREENPOP_DID=100 and SCREENPOP_CALL empty", ch.ChannelVars)
	}
}
