package history_test

import (
	"testing"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

func TestMemoryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T, cfg history.Config, opts history.Options) history.Store {
		cfg.Type = history.TypeMemory
		s, err := history.NewMemory(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
