package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

func runCmd(t *testing.T, f func(ctx context.Context, dsn string, args []string, stdout, stderr *bytes.Buffer) error, dsn string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := f(t.Context(), dsn, args, &stdout, &stderr)
	return stdout.String() + stderr.String(), err
}

func migrateCmd(ctx context.Context, dsn string, args []string, stdout, stderr *bytes.Buffer) error {
	return dbMigrate(ctx, dsn, args, stdout, stderr)
}

func accessCmd(ctx context.Context, dsn string, args []string, stdout, stderr *bytes.Buffer) error {
	return accessLogCmd(ctx, dsn, args, stdout, stderr)
}

func TestDBMigrate(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	out, err := runCmd(t, migrateCmd, dsn, "-status")
	if err != nil || !strings.Contains(out, "version 0 of 2, 2 migration(s) pending") {
		t.Fatalf("status before: %q, %v", out, err)
	}
	out, err = runCmd(t, migrateCmd, dsn)
	if err != nil || !strings.Contains(out, "OK    up 00001_history.sql") || !strings.Contains(out, "OK    up 00002_links.sql") {
		t.Fatalf("migrate: %q, %v", out, err)
	}
	out, err = runCmd(t, migrateCmd, dsn)
	if err != nil || out != "history schema: up to date, nothing to do\n" {
		t.Fatalf("second migrate: %q, %v", out, err)
	}
	out, err = runCmd(t, migrateCmd, dsn, "-status")
	if err != nil || out != "history schema: version 2 of 2, up to date\n" {
		t.Fatalf("status after: %q, %v", out, err)
	}
	if _, err := runCmd(t, migrateCmd, ""); err == nil || !strings.Contains(err.Error(), "not in PostgreSQL") {
		t.Fatalf("without a DSN: %v", err)
	}
}

// historyWithEntries runs the daemon's store on dsn and records a few
// card deliveries, as the daemon would.
func historyWithEntries(t *testing.T, dsn string) history.Store {
	t.Helper()
	return historyWith(t, dsn, []history.AccessEntry{
		{At: time.Now().Add(-48 * time.Hour), Agent: "1001", CustomerID: "C-10002", Phone: "+4930901820", CallID: "pbx/1", Sections: []string{"accounting", "history"}},
		{At: time.Now().Add(-time.Hour), Agent: "1002", CustomerID: "C-10002", Phone: "+4930901820", CallID: "pbx/2", Sections: []string{"accounting"}},
		{At: time.Now().Add(-time.Hour), Agent: "1001", Phone: "+4930555555", CallID: "pbx/3"},
		{At: time.Now().Add(-900 * time.Hour), Agent: "1001", CustomerID: "C-10002", CallID: "pbx/0"},
	})
}

// historyWith runs the daemon's store on dsn, records entries and a call,
// and waits until PostgreSQL has them.
func historyWith(t *testing.T, dsn string, entries []history.AccessEntry) history.Store {
	t.Helper()
	cfg := history.Config{Type: history.TypePostgres, DSNEnv: "HISTORY_DSN"}
	s, err := openHistory(cfg, func(k string) string { return map[string]string{"HISTORY_DSN": dsn}[k] }, nil, history.Options{Daemon: "daemon-a"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		s.Close()
	})
	for _, e := range entries {
		if err := s.LogAccess(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordCall(ctx, history.Call{ID: "pbx/2", Phone: "+4930901820", CustomerID: "C-10002", RingAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	flushCtx, cancelFlush := context.WithTimeout(ctx, 30*time.Second)
	defer cancelFlush()
	if err := s.Flush(flushCtx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAccessLogCommand(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	historyWithEntries(t, dsn)

	out, err := runCmd(t, accessCmd, dsn, "-customer", "C-10002", "-since", "720h")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "AT (UTC)") || !strings.Contains(lines[1], "1002") || !strings.Contains(lines[2], "accounting,history") ||
		!strings.HasPrefix(lines[3], "2 entries since") || strings.Contains(out, "901820") {
		t.Fatalf("table:\n%s", out)
	}
	out, err = runCmd(t, accessCmd, dsn, "-agent", "1001", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []history.AccessEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("JSON: %v\n%s", err, out)
	}
	if len(entries) != 2 || entries[0].CallID != "pbx/3" || entries[0].PhoneHash != history.HashPhone("+4930555555") || entries[1].Daemon != "daemon-a" {
		t.Fatalf("by agent: %+v", entries)
	}
	if out, err := runCmd(t, accessCmd, dsn, "-phone", "+4930901820", "-since", "1000h", "-json"); err != nil || strings.Count(out, `"call_id"`) != 2 {
		t.Fatalf("by phone: %s, %v", out, err)
	}
	if out, err := runCmd(t, accessCmd, dsn, "-customer", "C-nobody", "-json"); err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("nobody: %q, %v", out, err)
	}
	for _, args := range [][]string{{}, {"-customer", "C-1", "extra"}, {"-phone", "030901820"}, {"-agent", "1001", "-since", "-1h"}} {
		if _, err := runCmd(t, accessCmd, dsn, args...); err == nil {
			t.Errorf("access-log %q: no error", args)
		}
	}
}

// A card reaches an agent in several messages, each an access entry; the
// table gives one row per agent and card (its first time, every section,
// how many messages), -each one per entry, -json every entry. Erasures are
// never merged.
func TestAccessLogOneRowPerCard(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	card := func(agent string, after time.Duration, sections ...string) history.AccessEntry {
		return history.AccessEntry{At: t0.Add(after), Agent: agent, CustomerID: "C-7", Phone: "+4930901820", CallID: "pbx/9", Sections: sections}
	}
	historyWith(t, dsn, []history.AccessEntry{
		card("1001", 0),                   // the pop, sections loading
		card("1002", 50*time.Millisecond), // after 1001's: rows of one moment have no set order
		card("1001", 100*time.Millisecond, "sales"),
		card("1001", 200*time.Millisecond, "accounting", "sales"), // the complete card
		card("1002", 200*time.Millisecond, "accounting"),
		card("1001", 300*time.Millisecond, "history"),
		{At: t0.Add(time.Minute), Action: history.ActionErase, Agent: "DPO 1", CustomerID: "C-7"},
		{At: t0.Add(2 * time.Minute), Action: history.ActionErase, Agent: "DPO 1", CustomerID: "C-7"},
	})
	out, err := runCmd(t, accessCmd, dsn, "-customer", "C-7")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := func(i int) []string { return strings.Fields(lines[i]) }
	// AT is two fields (date, time); SENT is the one before the daemon.
	if len(lines) != 6 || fields(0)[8] != "SECTIONS" ||
		fields(1)[2] != "erase" || fields(2)[2] != "erase" ||
		!slices.Equal(fields(3)[3:], []string{"1002", "C-7", history.HashPhone("+4930901820")[:12], "pbx/9", "accounting", "2", "daemon-a"}) ||
		!slices.Equal(fields(4)[3:], []string{"1001", "C-7", history.HashPhone("+4930901820")[:12], "pbx/9", "accounting,history,sales", "4", "daemon-a"}) ||
		fields(4)[1] != t0.UTC().Format("15:04:05") ||
		!strings.HasPrefix(lines[5], "8 entries in 4 row(s), one per agent and card") {
		t.Fatalf("table:\n%s", out)
	}
	if out, err := runCmd(t, accessCmd, dsn, "-customer", "C-7", "-each"); err != nil || strings.Count(out, "pbx/9") != 6 || !strings.Contains(out, "8 entries since") {
		t.Fatalf("-each: %v\n%s", err, out)
	}
	if out, err := runCmd(t, accessCmd, dsn, "-customer", "C-7", "-json"); err != nil || strings.Count(out, `"call_id"`) != 6 {
		t.Fatalf("-json: %v\n%s", err, out)
	}
}

func TestEraseCommand(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	s := historyWithEntries(t, dsn)
	var evicted []string
	erase := func(ctx context.Context, dsn string, args []string, stdout, stderr *bytes.Buffer) error {
		return eraseCmd(ctx, dsn, args, stdout, stderr, func(_ context.Context, customerID, phone string) (string, error) {
			evicted = append(evicted, customerID+"|"+phone)
			return evictedLine, nil
		})
	}
	for _, args := range [][]string{{"-customer", "C-10002", "-yes"}, {"-customer", "C-10002", "-by", "dpo"}, {"-by", "dpo", "-yes"}, {"-phone", "0309", "-by", "dpo", "-yes"}} {
		if _, err := runCmd(t, erase, dsn, args...); err == nil {
			t.Errorf("erase %q: no error", args)
		}
	}
	out, err := runCmd(t, erase, dsn, "-customer", "C-10002", "-by", "dpo ticket 42", "-yes")
	if err != nil || out != "erased 1 call(s) and 0 note(s) of customer C-10002; the access log records the erasure\ncached source answers evicted\n" {
		t.Fatalf("erase: %q, %v", out, err)
	}
	if len(evicted) != 1 || evicted[0] != "C-10002|" {
		t.Fatalf("evicted %q", evicted)
	}
	if _, err := s.Call(t.Context(), "pbx/2"); !errors.Is(err, history.ErrCallNotFound) {
		t.Fatalf("the call is still there: %v", err)
	}
	out, err = runCmd(t, accessCmd, dsn, "-customer", "C-10002", "-json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []history.AccessEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 || entries[0].Action != history.ActionErase || entries[0].Agent != "dpo ticket 42" || entries[0].Daemon != cliDaemon {
		t.Fatalf("access log after erasure: %+v", entries)
	}
	failing := func(ctx context.Context, dsn string, args []string, stdout, stderr *bytes.Buffer) error {
		return eraseCmd(ctx, dsn, args, stdout, stderr, func(context.Context, string, string) (string, error) { return "", errors.New("redis down") })
	}
	if _, err := runCmd(t, failing, dsn, "-phone", "+4930555555", "-by", "dpo", "-yes"); err == nil || !strings.Contains(err.Error(), "run the command again") {
		t.Fatalf("eviction failure: %v", err)
	}
}

func TestOpenHistory(t *testing.T) {
	s, err := openHistory(history.Config{}, nil, nil, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.(*history.Memory); !ok {
		t.Fatalf("the default history is %T, want memory", s)
	}
	files := fstest.MapFS{"secrets/history-dsn": {Data: []byte("postgres://screenpop@db.example.com/screenpop\n")}}
	s, err = openHistory(history.Config{Type: history.TypePostgres, DSNFile: "secrets/history-dsn"}, nil, files, history.Options{})
	if err != nil {
		t.Fatalf("dsn_file: %v", err)
	}
	s.Close()
	for _, tc := range []struct {
		cfg  history.Config
		want string
	}{
		{history.Config{Type: history.TypePostgres, DSNEnv: "HISTORY_DSN"}, "history.dsn_env: environment variable HISTORY_DSN is not set"},
		{history.Config{Type: history.TypePostgres, DSNFile: "missing"}, "history.dsn_file: cannot read file missing"},
		{history.Config{Type: "sqlite"}, `history: unknown type "sqlite"`},
	} {
		if _, err := openHistory(tc.cfg, func(string) string { return "" }, files, history.Options{}); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
