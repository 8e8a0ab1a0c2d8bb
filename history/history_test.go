package history_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
	"github.com/screenpop/screenpop/pop"
)

// The store wires in where MemoryHistory is today, without changing the
// consumers' interfaces.
var (
	_ pop.CallRecorder   = history.Store(nil)
	_ aggregator.History = history.Store(nil)
	_ history.Store      = (*history.Memory)(nil)
)

func TestConfigValidate(t *testing.T) {
	valid := func() history.Config {
		return history.Config{Type: history.TypePostgres, DSNEnv: "HISTORY_DSN", Dispositions: historytest.Dispositions, WrapUpRequired: true, WrapUpTime: time.Minute}
	}
	tests := []struct {
		name   string
		change func(*history.Config)
		want   []string // one line per problem
	}{
		{"valid", func(*history.Config) {}, nil},
		{"memory by default", func(c *history.Config) { *c = history.Config{} }, nil},
		{"unknown type", func(c *history.Config) { c.Type = "redis" }, []string{`type: unknown type "redis": use memory or postgres`}},
		{"postgres without dsn", func(c *history.Config) { c.DSNEnv = "" }, []string{"dsn_env: dsn_env is required for type: postgres"}},
		{"both dsn options", func(c *history.Config) { c.DSNFile = "/run/secrets/dsn" }, []string{"dsn_file: set dsn_env or dsn_file, not both"}},
		{"memory with a dsn", func(c *history.Config) { c.Type = history.TypeMemory }, []string{"dsn_env: dsn_env is only for type: postgres"}},
		{"short retention", func(c *history.Config) { c.Retention = time.Hour }, []string{"retention: 1h0m0s is shorter than 24h"}},
		{"short access retention", func(c *history.Config) { c.AccessRetention = time.Hour }, []string{"access_retention: 1h0m0s is shorter than 24h"}},
		{"bad dispositions", func(c *history.Config) {
			c.Dispositions = []history.Disposition{{Code: "Order Placed", Label: "x"}, {Code: "ok", Label: ""}, {Code: "ok", Label: "Again"}}
		}, []string{
			`dispositions[0].code: code "Order Placed" must be 1-32 lower-case letters`,
			"dispositions[1].label: label is required",
			`dispositions[2].code: code "ok" is also dispositions[1]`,
		}},
		{"wrap-up without codes", func(c *history.Config) { c.Dispositions = nil }, []string{"wrapup_required: wrapup_required needs dispositions"}},
		{"ranges", func(c *history.Config) {
			c.WrapUpTime, c.BufferSize, c.WriteTimeout, c.MaxConns, c.MaxCalls = 2*time.Hour, 10, time.Millisecond, 1000, -1
		}, []string{"wrapup_time: 2h0m0s is outside 0..1h", "buffer_size: 10 is outside", "write_timeout: 1ms is outside", "max_conns: 1000 is outside", "max_calls: -1 is outside"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid()
			tt.change(&c)
			c.ApplyDefaults()
			err := c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %v; want %d problem(s): %q", err, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d: %q, want it to start with %q", i, got[i], tt.want[i])
				}
			}
			if err != nil {
				var oe *history.OptionError
				if !errors.As(err, &oe) || oe.Option == "" {
					t.Errorf("problems are not *OptionError naming the option: %#v", err)
				}
			}
		})
	}
}

func TestMemoryIsBounded(t *testing.T) {
	m, err := history.NewMemory(history.Config{MaxCalls: 3}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	base := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"pbx/1", "pbx/2", "pbx/3", "pbx/4"} {
		if err := m.RecordCall(ctx, history.Call{ID: id, Phone: "+4930901820", RingAt: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	// A note-only entry counts too.
	if _, err := m.SaveNote(ctx, history.NewNote{CallID: "pbx/5", Phone: "+4930901820", Agent: "1001", Text: "x"}); err != nil {
		t.Fatal(err)
	}
	calls, err := m.Recent(ctx, "+4930901820", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || calls[0].CallID != "pbx/4" || calls[1].CallID != "pbx/3" {
		t.Fatalf("after 5 entries with max_calls 3: %v", calls)
	}
	if _, err := m.Call(ctx, "pbx/1"); !errors.Is(err, history.ErrCallNotFound) {
		t.Fatalf("the oldest call is still there: %v", err)
	}
}

func TestRecordFromPastCall(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	c := history.CallFromPast(screenpop.PastCall{CallID: "pbx/1", Phone: "+4930901820", At: at, Agent: "1001", Outcome: screenpop.OutcomeAnswered, Duration: time.Minute})
	if c.RingAt != at || !c.EndAt.Equal(at.Add(time.Minute)) || c.AnsweredBy != "1001" || c.Agent != "1001" || c.Withheld {
		t.Fatalf("CallFromPast = %+v", c)
	}
	if c := history.CallFromPast(screenpop.PastCall{CallID: "pbx/2", At: at, Agent: "1001", Outcome: screenpop.OutcomeAbandoned}); !c.Withheld || c.AnsweredBy != "" {
		t.Fatalf("a call without number is withheld, an abandoned one has no answerer: %+v", c)
	}
}

func TestHashAndIDs(t *testing.T) {
	if history.HashPhone("") != "" || history.HashPhone("+4930901820") == history.HashPhone("+4930901821") || len(history.HashPhone("+4930901820")) != 32 {
		t.Fatal("HashPhone")
	}
	if strings.Contains(history.HashPhone("+4930901820"), "901820") {
		t.Fatal("the hash shows the number")
	}
	a, b := history.NewID(), history.NewID()
	if a == b || !history.ValidID(a) || history.ValidID("x") || history.ValidID(strings.ToUpper(a)) {
		t.Fatalf("NewID %q %q", a, b)
	}
}

func TestRunPurges(t *testing.T) {
	m, err := history.NewMemory(history.Config{Retention: 48 * time.Hour}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	if err := m.RecordCall(t.Context(), history.Call{ID: "pbx/old", Phone: "+4930901820", RingAt: now.Add(-72 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- history.RunPurges(ctx, m, time.Hour, func() time.Time { return now }, nil) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := m.Call(t.Context(), "pbx/old"); errors.Is(err, history.ErrCallNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first purge did not run within 30s of RunPurges starting")
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
