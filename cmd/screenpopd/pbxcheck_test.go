package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// pbxConfig writes a configuration with a demo entry and one ari entry
// per fake PBX (named pbx, pbx2, ...) and returns its path.
func pbxConfig(t *testing.T, pbxs ...*fakeari.Server) string {
	t.Helper()
	body := "agents:\n  patterns: [\"PJSIP/{agent}\"]\ntelephony:\n  - {name: demo, type: demo, agents: [\"1001\"]}\n"
	for i, p := range pbxs {
		name := "pbx"
		if i > 0 {
			name += string(rune('1' + i))
		}
		body += "  - name: " + name + "\n    type: ari\n    url: " + p.URL() +
			"\n    user: " + fakeari.DefaultUser + "\n    password_env: ARI_PASSWORD\n    app: screenpop\n"
	}
	path := filepath.Join(t.TempDir(), "screenpop.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func ariEnv(k string) string {
	if k == "ARI_PASSWORD" {
		return fakeari.DefaultPassword
	}
	return ""
}

// runPBXCheck runs the command as main would and returns its exit status
// and output.
func runPBXCheck(t *testing.T, env func(string) string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, append([]string{"pbx", "check"}, args...), &out, &errOut, env)
	code := 0
	if err != nil {
		code = exitCode(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pbx check %v: exit %d (err %v)\nstdout:\n%s\nstderr:\n%s", args, code, err, out.String(), errOut.String())
		}
	})
	return code, out.String(), errOut.String()
}

// statusLine matches a table row: two spaces, the status padded to the
// column, the check padded to its column, what was found.
var statusLine = regexp.MustCompile(`^  (ok|WARN|FAIL|info)( +)(\S+(?: \S+)?)( +)\S`)

func TestPBXCheckHealthy(t *testing.T) {
	pbx := fakeari.New(t, fakeari.WithReadOnlyUser())
	pbx.SetChannels(json.RawMessage(`{"id":"1.0","name":"PJSIP/carrier-00000001","state":"Ring","caller":{"name":"","number":"+4930123456"},` +
		`"connected":{"name":"","number":""},"dialplan":{"context":"from-carrier","exten":"100","priority":1},` +
		`"channelvars":{"SCREENPOP_DID":"100","SCREENPOP_CALL":"1.0","CALLERID(pres)":"allowed_not_screened"}}`))
	code, out, _ := runPBXCheck(t, ariEnv, "-config", pbxConfig(t, pbx), "-wait", "30s")
	if code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if !strings.HasPrefix(out, "telephony pbx: "+pbx.URL()+", app screenpop\n") {
		t.Errorf("header: %q", strings.SplitN(out, "\n", 2)[0])
	}
	want := []string{
		"ok reachable", "ok user", "ok read_only", "ok res_ari_events", "ok subscription", "ok channels",
		"info channelvars", "ok channelvars CALLERID(pres)", "ok channelvars SCREENPOP_CALL", "ok channelvars SCREENPOP_DID",
		"ok event_filter", "info websocket_write_timeout", "ok asterisk_version",
	}
	var got []string
	foundAt := -1
	for _, l := range strings.Split(out, "\n") {
		m := statusLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		got = append(got, m[1]+" "+m[3])
		// Aligned: what was found starts in the same column on every row.
		at := 2 + len(m[1]) + len(m[2]) + len(m[3]) + len(m[4])
		if foundAt == -1 {
			foundAt = at
		} else if at != foundAt {
			t.Errorf("row %q: found column at %d, want %d", l, at, foundAt)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if !strings.Contains(out, "telephony pbx: OK (11 ok, 0 WARN, 0 FAIL, 2 info)") {
		t.Errorf("no verdict line")
	}
	if v := pbx.Violations(); len(v) > 0 {
		t.Errorf("requests that could touch a call: %v", v)
	}
}

// Any FAIL makes the exit status 1; the fix is printed under the row.
func TestPBXCheckFailure(t *testing.T) {
	good := fakeari.New(t, fakeari.WithReadOnlyUser())
	bad := fakeari.New(t, fakeari.WithReadOnlyUser(), fakeari.WithoutEventsModule())
	code, out, _ := runPBXCheck(t, ariEnv, "-config", pbxConfig(t, good, bad), "-wait", "0s")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	_, second, ok := strings.Cut(out, "telephony pbx2: "+bad.URL())
	if !ok {
		t.Fatalf("no report for pbx2")
	}
	if !regexp.MustCompile(`(?m)^  FAIL +res_ari_events +GET /ari/events.*HTTP 404.*\n +fix: load res_ari_events \(modules.conf: load = res_ari_events.so\) / enable ARI in ari.conf`).MatchString(second) {
		t.Errorf("pbx2 lacks the res_ari_events FAIL with its fix")
	}
	if !strings.Contains(out, "telephony pbx: OK") || !strings.Contains(out, "telephony pbx2: FAILED") {
		t.Errorf("verdicts missing")
	}

	// -source checks only the one named.
	code, out, _ = runPBXCheck(t, ariEnv, "-config", pbxConfig(t, good, bad), "-wait", "0s", "-source", "pbx")
	if code != 0 || strings.Contains(out, "pbx2") {
		t.Errorf("-source pbx: exit %d, output mentions pbx2: %v", code, strings.Contains(out, "pbx2"))
	}
}

func TestPBXCheckJSON(t *testing.T) {
	pbx := fakeari.New(t, fakeari.WithAsteriskVersion("13.38.3"))
	code, out, _ := runPBXCheck(t, ariEnv, "-config", pbxConfig(t, pbx), "-wait", "10ms", "-json")
	if code != 0 {
		t.Fatalf("exit %d, want 0 (warnings only)", code)
	}
	var got struct {
		Sources []struct {
			Name  string `json:"name"`
			URL   string `json:"url"`
			App   string `json:"app"`
			Lines []struct {
				Check, Status, Found, Fix string
			} `json:"lines"`
		} `json:"sources"`
		Failed bool `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if len(got.Sources) != 1 || got.Sources[0].Name != "pbx" || got.Sources[0].URL != pbx.URL() || got.Sources[0].App != "screenpop" || got.Failed {
		t.Fatalf("report: %+v", got)
	}
	status := map[string]string{}
	for _, l := range got.Sources[0].Lines {
		status[l.Check] = l.Status
		if l.Check == "asterisk_version" && !strings.Contains(l.Fix, "upgrade Asterisk to 16") {
			t.Errorf("version fix %q", l.Fix)
		}
	}
	for check, want := range map[string]string{
		"reachable": "ok", "read_only": "WARN", "channelvars": "info", "asterisk_version": "WARN", "websocket_write_timeout": "info",
	} {
		if status[check] != want {
			t.Errorf("%s: %q, want %q", check, status[check], want)
		}
	}
}

// A command line or configuration that cannot be used: exit status 2,
// and no connection to any PBX.
func TestPBXCheckUsageErrors(t *testing.T) {
	pbx := fakeari.New(t)
	cfg := pbxConfig(t, pbx)
	for _, tc := range []struct {
		name string
		env  func(string) string
		args []string
		want string
	}{
		{"unknown flag", ariEnv, []string{"-config", cfg, "-verbose"}, "flag provided but not defined"},
		{"argument", ariEnv, []string{"-config", cfg, "pbx"}, "unexpected argument"},
		{"negative wait", ariEnv, []string{"-config", cfg, "-wait", "-1s"}, "-wait must not be negative"},
		{"missing file", ariEnv, []string{"-config", filepath.Join(t.TempDir(), "nope.yaml")}, "nope.yaml"},
		{"no ari entry", ariEnv, nil, "no telephony entry of type ari"},
		{"unknown source", ariEnv, []string{"-config", cfg, "-source", "pabx"}, `no telephony entry named "pabx" (entries: demo (demo), pbx (ari))`},
		{"not ari", ariEnv, []string{"-config", cfg, "-source", "demo"}, `telephony[0] (demo): is of type "demo"`},
		{"no password", noEnv, []string{"-config", cfg}, "password_env: environment variable ARI_PASSWORD is not set or empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, append([]string{"pbx", "check"}, tc.args...), &out, &errOut, tc.env)
			if code := exitCode(err); err == nil || code != 2 {
				t.Fatalf("err %v, exit %d, want 2", err, code)
			}
			if msg := err.Error() + errOut.String(); !strings.Contains(msg, tc.want) {
				t.Errorf("message %q lacks %q", msg, tc.want)
			}
		})
	}
	if err := run(context.Background(), []string{"pbx", "test"}, &bytes.Buffer{}, &bytes.Buffer{}, noEnv); exitCode(err) != 2 || !strings.Contains(err.Error(), "usage: screenpopd pbx check") {
		t.Errorf("pbx test: %v", err)
	}
	if n := len(pbx.Requests()) + pbx.Accepted(); n != 0 {
		t.Errorf("%d requests to the PBX on usage errors", n)
	}
}
