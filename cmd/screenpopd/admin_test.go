package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/screenpop/screenpop/configs"
)

// demoOn is the demo configuration on a free port, with admin.listen set
// to admin ("" leaves it off).
func demoOn(t *testing.T, admin string) *Main {
	t.Helper()
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = admin
	return runMain(t, cfg, Options{Stderr: io.Discard})
}

// Without admin.listen there is no admin listener, and the agents'
// listener serves no profile whatever the path.
func TestAdminListenerOffByDefault(t *testing.T) {
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Listen != "" {
		t.Fatalf("the demo configuration turns the admin listener on: %q", cfg.Admin.Listen)
	}
	m := demoOn(t, "")
	if a := m.AdminAddr(); a != nil {
		t.Fatalf("admin listener on %s without admin.listen", a)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/metrics", "/debug/vars"} {
		resp, err := http.Get("http://" + m.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "goroutine profile:") || strings.Contains(string(body), "Types of profiles available") ||
			strings.Contains(string(body), "/gc/cycles/total:gc-cycles") || strings.Contains(string(body), "memstats") {
			t.Errorf("the agents' listener serves %s:\n%.300s", path, body)
		}
	}
}

// With admin.listen the daemon serves pprof, the runtime metrics and expvar
// there, and still not on the agents' listener.
func TestAdminListenerServesProfilesAndMetrics(t *testing.T) {
	m := demoOn(t, "127.0.0.1:0")
	addr := m.AdminAddr()
	if addr == nil {
		t.Fatal("no admin listener with admin.listen set")
	}
	base := "http://" + addr.String()
	if body := get(t, base+"/debug/pprof/", http.StatusOK); !strings.Contains(body, "goroutine") || !strings.Contains(body, "heap") {
		t.Errorf("/debug/pprof/ lists no profiles:\n%.500s", body)
	}
	if body := get(t, base+"/debug/pprof/goroutine?debug=1", http.StatusOK); !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile:\n%.300s", body)
	}
	resp, err := http.Get(base + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	prof, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// A CPU profile is a gzipped protocol buffer.
	if resp.StatusCode != http.StatusOK || len(prof) < 2 || prof[0] != 0x1f || prof[1] != 0x8b {
		t.Errorf("CPU profile: status %d, %d bytes %q", resp.StatusCode, len(prof), prof[:min(len(prof), 80)])
	}

	var rm map[string]json.RawMessage
	if err := json.Unmarshal([]byte(get(t, base+"/debug/metrics", http.StatusOK)), &rm); err != nil {
		t.Fatalf("/debug/metrics is not a JSON object: %v", err)
	}
	var goroutines uint64
	if err := json.Unmarshal(rm["/sched/goroutines:goroutines"], &goroutines); err != nil || goroutines == 0 {
		t.Errorf("/sched/goroutines:goroutines = %s (%v), want a positive count", rm["/sched/goroutines:goroutines"], err)
	}
	var lat histogramSummary
	if err := json.Unmarshal(rm["/sched/latencies:seconds"], &lat); err != nil || lat.Count == 0 || lat.P99 == nil || lat.Max == nil || *lat.P99 > *lat.Max {
		t.Errorf("/sched/latencies:seconds = %s (%v), want a count and quantiles up to max", rm["/sched/latencies:seconds"], err)
	}
	if body := get(t, base+"/debug/vars", http.StatusOK); !strings.Contains(body, `"memstats"`) {
		t.Errorf("/debug/vars lacks memstats:\n%.300s", body)
	}
	// The agents' listener is unchanged by it.
	resp, err = http.Get("http://" + m.Addr().String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "goroutine profile:") {
		t.Error("the agents' listener serves profiles too")
	}
}

// admin.listen takes loopback addresses only, and says at the key's line
// and column what is wrong with any other; listen is checked alike (a
// host:port with a port in range), without the loopback rule: a bad one
// is an error at its line, not a daemon that fails when it binds.
func TestListenAddresses(t *testing.T) {
	fix := map[string]string{"admin": "(fix: e.g. listen: 127.0.0.1:6060", "listen": "(fix: e.g. listen: 127.0.0.1:8080"}
	for _, tc := range []struct {
		key, listen string
		want        string // "" accepted
	}{
		{"admin", "127.0.0.1:6060", ""},
		{"admin", "127.0.0.2:0", ""},
		{"admin", "[::1]:6060", ""},
		{"admin", "localhost:6060", ""},
		{"admin", "0.0.0.0:6060", `admin.yaml:6:3: admin.listen: "0.0.0.0:6060" is not a loopback address (0.0.0.0): profiles and goroutine stacks would be open to the network (fix: e.g. listen: 127.0.0.1:6060`},
		{"admin", ":6060", `admin.yaml:6:3: admin.listen: ":6060" is not a loopback address (every interface)`},
		{"admin", "10.0.0.5:6060", `"10.0.0.5:6060" is not a loopback address (10.0.0.5)`},
		{"admin", "[::]:6060", `"[::]:6060" is not a loopback address (::)`},
		{"admin", "admin.example.com:6060", `is not a loopback address (admin.example.com)`},
		{"admin", "6060", `admin.yaml:6:3: admin.listen: "6060" is not host:port (fix: e.g. listen: 127.0.0.1:6060`},
		{"admin", "127.0.0.1:http", `port "http" is not a number`},
		{"listen", "127.0.0.1:8080", ""},
		{"listen", ":8080", ""},
		{"listen", "[::]:443", ""},
		{"listen", "127.0.0.1:99999", `admin.yaml:6:1: listen: "127.0.0.1:99999": port "99999" is not a number in 0..65535 (fix: e.g. listen: 127.0.0.1:8080`},
		{"listen", "8080", `admin.yaml:6:1: listen: "8080" is not host:port`},
		{"listen", "127.0.0.1:http", `port "http" is not a number`},
	} {
		t.Run(tc.key+" "+tc.listen, func(t *testing.T) {
			text := "telephony: [{name: demo, type: demo, agents: ['1001']}]\n" +
				"auth: {demo_links: true}\n" +
				"agents: {names: {'1001': Alice Agent}}\n" +
				"# the listener\n"
			if tc.key == "admin" {
				text += "admin:\n  listen: \"" + tc.listen + "\"\n"
			} else {
				text += "\nlisten: \"" + tc.listen + "\"\n"
			}
			_, err := configs.Parse("admin.yaml", []byte(text), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error\n%v\nwant it to contain\n%s", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), fix[tc.key]):
				t.Errorf("error without the fix %q: %v", fix[tc.key], err)
			}
		})
	}
}
