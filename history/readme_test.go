package history_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/history"
)

// TestReadmeConfig decodes every `history:` example of the README strictly
// and validates it, so the README cannot show an option that does not
// exist or a value that is refused.
func TestReadmeConfig(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	examples := 0
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.HasPrefix(block, "history:") && !strings.Contains(block, "\nhistory:") {
			continue
		}
		examples++
		var doc struct {
			History history.Config `yaml:"history"`
		}
		dec := yaml.NewDecoder(bytes.NewReader([]byte(block)))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("README example:\n%s\n%v", block, err)
		}
		doc.History.ApplyDefaults()
		if err := doc.History.Validate(); err != nil {
			t.Fatalf("README example:\n%s\n%v", block, err)
		}
	}
	if examples == 0 {
		t.Fatal("no history: example in the README")
	}
}

// The sample `screenpopd sample history` prints is the README's, and it
// decodes strictly and validates.
func TestSample(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "```yaml\n"+string(history.Sample)+"```") {
		t.Error("README.md does not show sample.yaml as it is")
	}
	var doc struct {
		History history.Config `yaml:"history"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(history.Sample))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	doc.History.ApplyDefaults()
	if err := doc.History.Validate(); err != nil {
		t.Fatal(err)
	}
	if doc.History.Type != history.TypePostgres || len(doc.History.Dispositions) != 4 || doc.History.WrapUpTime == 0 {
		t.Errorf("sample: %+v", doc.History)
	}
}
