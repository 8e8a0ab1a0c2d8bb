package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// SIGHUP's work: a bad file is refused and the running configuration stays;
// a good one is swapped in while agents stay connected.
func TestReloadKeepsAgentsAndRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte("id,phone,name\nc1,+4930123456,Jane Doe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "screenpop.yaml")
	write := func(body string) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const base = `listen: 127.0.0.1:0
auth: {demo_links: true}
telephony:
  - {name: demo, type: demo, agents: ["1001"], interval: 1h}
directory: {name: directory, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
sources:
  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
`
	write(base)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m := runMain(t, cfg, Options{Stderr: io.Discard})
	c := dialAgent(t, m, "1001")
	var first envelope
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := c.ReadJSON(&first); err != nil {
		t.Fatal(err)
	}

	// A misspelt option in a new source: refused, nothing changes.
	write(base + "  - {name: tickets, type: file, path: customers.csv, matsh: phone}\n")
	next, err := loadConfig(path)
	if err == nil {
		err = m.Reload(next)
	}
	if err == nil {
		t.Fatal("a configuration with a misspelt option was accepted")
	}
	if got := len(m.agg.Config().Sources); got != 1 {
		t.Fatalf("after a refused reload: %d sources, want the running 1", got)
	}

	// A good change is swapped in.
	write(base + "  - {name: tickets, type: file, needs: phone, path: customers.csv, match: phone, param: phone}\n")
	next, err = loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(next); err != nil {
		t.Fatalf("good reload refused: %v", err)
	}
	if got := len(m.agg.Config().Sources); got != 2 {
		t.Fatalf("after reload: %d sources, want 2", got)
	}

	// The agent's socket survived both: it still answers a ping.
	pong := make(chan struct{}, 1)
	c.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	if err := c.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("agent socket closed by the reload: %v", err)
	}
	go func() {
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pong:
	case <-time.After(20 * time.Second):
		t.Fatal("agent socket no longer answers after the reload")
	}
}
