package ari

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	arilib "github.com/CyCoreSystems/ari/v5"
)

// Markers Asterisk lists among an application's subscriptions when it
// receives the events of every channel or bridge (res/stasis/app.c).
const (
	allChannels = "__AST_CHANNEL_ALL_TOPIC"
	allBridges  = "__AST_BRIDGE_ALL_TOPIC"
)

// maxBody bounds a REST answer: a channel list of a few thousand calls is
// a few MB.
const maxBody = 64 << 20

// application is the part of Asterisk's Application JSON screenpop reads.
type application struct {
	Name       string   `json:"name"`
	ChannelIDs []string `json:"channel_ids"`
	BridgeIDs  []string `json:"bridge_ids"`
}

func (a application) observesAll() bool {
	return slices.Contains(a.ChannelIDs, allChannels) && slices.Contains(a.BridgeIDs, allBridges)
}

// ensureSubscribed makes sure the application receives the events of
// every channel and bridge. subscribeAll=true on the socket only holds
// when this connection creates the application; if it already existed (an
// older connection created it without subscribeAll) its subscription model
// stays, and screenpop would see no call. Then it subscribes explicitly,
// which needs an ARI user with write access.
func (s *Source) ensureSubscribed(ctx context.Context) error {
	app, err := s.application(ctx)
	if err != nil {
		return fmt.Errorf("check the application's subscription: %w", err)
	}
	if app.observesAll() {
		return nil
	}
	s.log.Warn("ari: subscribeAll did not hold (the application existed before this connection); subscribing to every channel and bridge explicitly",
		"app", s.cfg.App, "channel_ids", len(app.ChannelIDs), "bridge_ids", len(app.BridgeIDs))
	q := url.Values{"eventSource": {"channel:", "bridge:"}}
	err = s.rest(ctx, http.MethodPost, "applications/"+url.PathEscape(s.cfg.App)+"/subscription", q, &app)
	var he *httpError
	if errors.As(err, &he) && he.Status == http.StatusForbidden {
		return fmt.Errorf("application %q existed before this connection without subscribeAll, so it does not get every call's events, "+
			"and the ARI user may not subscribe it (read_only = yes): give screenpop an app name no other ARI client uses, "+
			"or stop the client that holds it, or set read_only = no: %w", s.cfg.App, err)
	}
	if err != nil {
		return fmt.Errorf("subscribe the application to every channel and bridge: %w", err)
	}
	if !app.observesAll() {
		return fmt.Errorf("application %q is still not subscribed to every channel and bridge after subscribing it", s.cfg.App)
	}
	return nil
}

// pbxRestarted reads when Asterisk started (GET /ari/asterisk/info) and
// says whether that changed since the last connection: the PBX restarted
// while the socket was down, and every call it had was cut. When the time
// cannot be read (an old Asterisk, a timeout) nothing is concluded.
func (s *Source) pbxRestarted(ctx context.Context) bool {
	var info struct {
		Status struct {
			StartupTime string `json:"startup_time"`
		} `json:"status"`
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RESTTimeout)
	defer cancel()
	if err := s.rest(ctx, http.MethodGet, "asterisk/info", url.Values{"only": {"status"}}, &info); err != nil {
		s.log.Debug("ari: cannot read Asterisk's start time; a restart will not be told from a reconnect", "err", err)
		return false
	}
	started := info.Status.StartupTime
	if started == "" {
		return false
	}
	restarted := s.startedAt != "" && s.startedAt != started
	s.startedAt = started
	return restarted
}

// application reads the application this connection registered. Asterisk
// registers it only once the WebSocket is established, so right after the
// handshake it may not exist yet: a 404 is retried briefly, within the
// REST timeout.
func (s *Source) application(ctx context.Context) (application, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.RESTTimeout,
		fmt.Errorf("application %q did not appear within %s of connecting", s.cfg.App, s.cfg.RESTTimeout))
	defer cancel()
	wait := 10 * time.Millisecond
	for {
		var app application
		err := s.rest(ctx, http.MethodGet, "applications/"+url.PathEscape(s.cfg.App), nil, &app)
		var he *httpError
		if !errors.As(err, &he) || he.Status != http.StatusNotFound {
			return app, err
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return app, fmt.Errorf("%w (last answer: %v)", context.Cause(ctx), err)
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// channels reads the live channels, the ground truth after a reconnect:
// Asterisk does not queue events while the socket is down.
func (s *Source) channels(ctx context.Context) ([]arilib.ChannelData, error) {
	var out []arilib.ChannelData
	if err := s.rest(ctx, http.MethodGet, "channels", nil, &out); err != nil {
		return nil, fmt.Errorf("read the live channels: %w", err)
	}
	return out, nil
}

// rest makes one REST request under its own deadline and decodes the JSON
// answer into out.
func (s *Source) rest(ctx context.Context, method, path string, query url.Values, out any) error {
	u := s.base.JoinPath(path)
	u.RawQuery = query.Encode()
	what := method + " /ari/" + path
	ctx, cancel := context.WithTimeoutCause(ctx, s.cfg.RESTTimeout,
		fmt.Errorf("%s: no answer from Asterisk within %s", what, s.cfg.RESTTimeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Basic "+basicAuth(s.cfg.User, s.cfg.Password))
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			return cause
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return statusError(what, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(out); err != nil {
		return fmt.Errorf("%s: decoding the answer: %w", what, err)
	}
	return nil
}

// httpError is a non-2xx answer from Asterisk.
type httpError struct {
	What    string
	Status  int
	Message string
}

func (e *httpError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (check the ARI user and password in ari.conf)"
	case http.StatusNotFound:
		if e.Message == "" {
			// Not an ARI answer: ARI is not there at all.
			hint = " (is ARI enabled? res_ari loaded, [general] enabled = yes in ari.conf and http.conf)"
		}
	}
	if e.Message != "" {
		return fmt.Sprintf("%s: HTTP %d: %s%s", e.What, e.Status, e.Message, hint)
	}
	return fmt.Sprintf("%s: HTTP %d%s", e.What, e.Status, hint)
}

func statusError(what string, resp *http.Response) error {
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := ""
	if json.Unmarshal(raw, &body) == nil {
		msg = body.Message
		if msg == "" {
			msg = body.Error
		}
	}
	return &httpError{What: what, Status: resp.StatusCode, Message: strings.TrimSpace(msg)}
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}

// eventType reads the "type" of a frame without decoding the rest.
func eventType(frame []byte) (string, bool) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(frame, &head); err != nil || head.Type == "" {
		return "", false
	}
	return head.Type, true
}
