package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

// options parses YAML text into the mapping node a Spec carries.
func options(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func build(t *testing.T, files fstest.MapFS, opts string) (aggregator.Source, error) {
	t.Helper()
	return New(adapters.Spec{Name: "test", Options: options(t, opts), Files: files})
}

func mustBuild(t *testing.T, files fstest.MapFS, opts string) aggregator.Source {
	t.Helper()
	src, err := build(t, files, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return src
}

func fetch(t *testing.T, src aggregator.Source, key aggregator.Key) []aggregator.Record {
	t.Helper()
	recs, err := src.Fetch(context.Background(), key)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return recs
}

const vipCSV = "phone,tier,discount,account_manager,customer_no\n" +
	"+4930123456,gold,0.05,Eva Roth,00123\n" +
	"+48601234567,silver,3,Jan Nowak,17\n" +
	"+4930123456,platinum,-1.5,Max Ernst,\n"

func TestCSVLookupByPhone(t *testing.T) {
	src := mustBuild(t, fstest.MapFS{"lists/vip.csv": {Data: []byte(vipCSV)}}, "{path: lists/vip.csv, param: phone}")

	got := fetch(t, src, aggregator.Key{Phone: "+4930123456", CustomerID: "C-1"})
	want := []aggregator.Record{
		{"phone": "+4930123456", "tier": "gold", "discount": 0.05, "account_manager": "Eva Roth", "customer_no": "00123"},
		{"phone": "+4930123456", "tier": "platinum", "discount": -1.5, "account_manager": "Max Ernst", "customer_no": ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records\n got %#v\nwant %#v", got, want)
	}
	if got := fetch(t, src, aggregator.Key{Phone: "+48601234567"}); len(got) != 1 || got[0]["discount"] != 3.0 || got[0]["customer_no"] != 17.0 {
		t.Errorf("PL record: %#v", got)
	}
	if got := fetch(t, src, aggregator.Key{Phone: "+4930999999"}); len(got) != 0 {
		t.Errorf("unknown number returned %v", got)
	}
	// A key without the parameter (withheld number) finds nothing.
	if got := fetch(t, src, aggregator.Key{CustomerID: "C-1"}); len(got) != 0 {
		t.Errorf("key without phone returned %v", got)
	}
}

func TestCSVMatchColumnStaysString(t *testing.T) {
	// "1042" in the match column must stay the string the Key carries,
	// even though it is a clean number.
	data := "customer_id;balance\n1042;99.5\n0042;1\n"
	src := mustBuild(t, fstest.MapFS{"b.csv": {Data: []byte(data)}}, `{path: b.csv, delimiter: ";"}`)
	got := fetch(t, src, aggregator.Key{CustomerID: "1042"})
	if len(got) != 1 || got[0]["customer_id"] != "1042" || got[0]["balance"] != 99.5 {
		t.Fatalf("got %#v", got)
	}
	if got := fetch(t, src, aggregator.Key{CustomerID: "42"}); len(got) != 0 {
		t.Errorf("0042 must not match 42: %v", got)
	}
}

func TestCSVByteOrderMark(t *testing.T) {
	data := "\xef\xbb\xbfcustomer_id,note\nC-1,hello\n"
	src := mustBuild(t, fstest.MapFS{"n.csv": {Data: []byte(data)}}, "{path: n.csv}")
	if got := fetch(t, src, aggregator.Key{CustomerID: "C-1"}); len(got) != 1 || got[0]["note"] != "hello" {
		t.Fatalf("got %#v", got)
	}
}

const creditJSON = `[
  {"customer_id": "C-1", "credit_limit": 25000, "terms": ["Net 30", "Net 45"], "risk": {"class": "A"}},
  {"customer_id": 1042, "credit_limit": 500.5, "blocked": true, "note": null},
  {"customer_id": "C-2", "credit_limit": 0}
]`

func TestJSONLookupKeepsDecodedValues(t *testing.T) {
	src := mustBuild(t, fstest.MapFS{"demo/credit.json": {Data: []byte(creditJSON)}}, "{path: demo/credit.json, match: customer_id}")

	got := fetch(t, src, aggregator.Key{CustomerID: "C-1"})
	want := []aggregator.Record{{
		"customer_id": "C-1", "credit_limit": 25000.0,
		"terms": []any{"Net 30", "Net 45"}, "risk": map[string]any{"class": "A"},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("C-1\n got %#v\nwant %#v", got, want)
	}
	// A numeric customer number is found by its string form.
	got = fetch(t, src, aggregator.Key{CustomerID: "1042"})
	if len(got) != 1 || got[0]["blocked"] != true || got[0]["credit_limit"] != 500.5 {
		t.Errorf("1042: %#v", got)
	}
	if v, ok := got[0]["note"]; !ok || v != nil {
		t.Errorf("null must stay a nil value, got %#v (present %v)", v, ok)
	}
}

func TestJSONArrayMatchField(t *testing.T) {
	data := `[{"id": "C-7", "phones": ["+4930111", "+4917022"]}, {"id": "C-8", "phones": "+4930111"}]`
	src := mustBuild(t, fstest.MapFS{"d.json": {Data: []byte(data)}}, "{path: d.json, param: phone, match: phones}")
	if got := fetch(t, src, aggregator.Key{Phone: "+4917022"}); len(got) != 1 || got[0]["id"] != "C-7" {
		t.Errorf("+4917022: %#v", got)
	}
	if got := fetch(t, src, aggregator.Key{Phone: "+4930111"}); len(got) != 2 {
		t.Errorf("+4930111 should match both records, got %#v", got)
	}
}

func TestOtherParams(t *testing.T) {
	data := `[{"nsn": "30123456", "region": "DE", "x": 1}]`
	files := fstest.MapFS{"n.json": {Data: []byte(data)}}
	src := mustBuild(t, files, "{path: n.json, param: national, match: nsn}")
	if got := fetch(t, src, aggregator.Key{Phone: "+4930123456", National: "30123456"}); len(got) != 1 {
		t.Errorf("national: %v", got)
	}
	src = mustBuild(t, files, "{path: n.json, param: region}")
	if got := fetch(t, src, aggregator.Key{Region: "DE"}); len(got) != 1 {
		t.Errorf("region: %v", got)
	}
}

func TestFetchReturnsCopies(t *testing.T) {
	src := mustBuild(t, fstest.MapFS{"c.json": {Data: []byte(creditJSON)}}, "{path: c.json}")
	first := fetch(t, src, aggregator.Key{CustomerID: "C-2"})
	first[0]["credit_limit"] = "changed"
	delete(first[0], "customer_id")
	again := fetch(t, src, aggregator.Key{CustomerID: "C-2"})
	if again[0]["credit_limit"] != 0.0 || again[0]["customer_id"] != "C-2" {
		t.Fatalf("a caller's change leaked into the index: %#v", again[0])
	}
}

func TestFetchHonoursContext(t *testing.T) {
	src := mustBuild(t, fstest.MapFS{"c.json": {Data: []byte(creditJSON)}}, "{path: c.json}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Fetch(ctx, aggregator.Key{CustomerID: "C-1"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestAbsolutePath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vip.csv")
	if err := os.WriteFile(p, []byte(vipCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	// No Files at all: an absolute path does not need them.
	src, err := New(adapters.Spec{Name: "vip", Options: options(t, "{path: '"+p+"', param: phone}")})
	if err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, src, aggregator.Key{Phone: "+48601234567"}); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestConfigurationErrors(t *testing.T) {
	files := fstest.MapFS{
		"demo/credit.json": {Data: []byte(creditJSON)},
		"lists/vip.csv":    {Data: []byte(vipCSV)},
		"lists/vip.txt":    {Data: []byte(vipCSV)},
		"broken.json":      {Data: []byte("[\n  {\"customer_id\": \"C-1\"},\n  {\"customer_id\": \"C-2\",}\n]\n")},
		"strings.json":     {Data: []byte("[\n  {\"customer_id\": \"C-1\"},\n  \"C-2\"\n]")},
		"object.json":      {Data: []byte(`{"customer_id": "C-1"}`)},
		"unclosed.json":    {Data: []byte(`[{"customer_id": "C-1"}`)},
		"trailing.json":    {Data: []byte("[{\"customer_id\": \"C-1\"}]\n[]")},
		"empty.json":       {Data: []byte("  \n")},
		"ragged.csv":       {Data: []byte("customer_id,a\nC-1,1\nC-2,2,3\n")},
		"dup.csv":          {Data: []byte("customer_id,a,a\n")},
		"quote.csv":        {Data: []byte("customer_id,a\nC-1,\"x\n")},
	}
	cases := []struct {
		opts string
		want string
		is   error
	}{
		{"{path: demo/credit.json,\n matc: customer_id}", `line 2, column 2: unknown option "matc" (did you mean "match"?)`, nil},
		{"{match: customer_id}", "line 1, column 1: path is required", nil},
		{"{path: demo/missing.json}", "line 1, column 2: demo/missing.json: file not found in the configuration file's folder (a relative path is read from there; or give an absolute one)", nil},
		{"{path: ../outside.json}", `line 1, column 2: path "../outside.json" leaves the configuration's folder`, nil},
		{"{path: lists/vip.txt}", `line 1, column 2: format is required: "lists/vip.txt" does not end in .csv or .json`, nil},
		{"{path: lists/vip.csv, format: xlsx}", `line 1, column 23: format "xlsx" is not supported`, nil},
		{"{path: lists/vip.csv, param: email}", `line 1, column 23: param "email": unknown lookup parameter`, aggregator.ErrUnknownParam},
		{"{path: demo/credit.json, delimiter: ';'}", "line 1, column 26: delimiter is only for CSV files", nil},
		{"{path: lists/vip.csv, delimiter: ';;'}", `line 1, column 23: delimiter ";;" must be one character`, nil},
		{"{path: broken.json}", "line 1, column 2: broken.json: record 2: line 3: invalid character '}'", nil},
		{"{path: strings.json}", "line 1, column 2: strings.json: record 2 (line 3): want an object, got a string", nil},
		{"{path: object.json}", "line 1, column 2: object.json: line 1: want a JSON array of objects ([{...}, ...]), got an object", nil},
		{"{path: unclosed.json}", "line 1, column 2: unclosed.json: unexpected end of file", nil},
		{"{path: trailing.json}", "line 1, column 2: trailing.json: line 2: unexpected data after the closing ]", nil},
		{"{path: empty.json}", "line 1, column 2: empty.json: empty file", nil},
		{"{path: demo/credit.json, match: custmer_id}", `line 1, column 26: demo/credit.json: no record has a value in "custmer_id" (match); fields of the first record: credit_limit, customer_id, risk, terms`, nil},
		{"{path: lists/vip.csv}", `line 1, column 2: lists/vip.csv: line 1: no column "customer_id" (match) in the header row; columns: phone, tier, discount, account_manager, customer_no`, nil},
		{"{path: ragged.csv}", "line 1, column 2: ragged.csv: line 3: wrong number of fields", nil},
		{"{path: dup.csv}", `line 1, column 2: dup.csv: line 1: column "a" appears twice`, nil},
		{"{path: quote.csv}", "line 1, column 2: quote.csv: line 2:", nil},
	}
	for _, c := range cases {
		_, err := build(t, files, c.opts)
		if err == nil {
			t.Errorf("%s: no error, want %q", c.opts, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got %q\nwant prefix %q", c.opts, err, c.want)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: %v is not %v", c.opts, err, c.is)
		}
	}
}

func TestRelativePathWithoutFiles(t *testing.T) {
	_, err := New(adapters.Spec{Name: "x", Options: options(t, "{path: a.json}")})
	if err == nil || !strings.Contains(err.Error(), "use an absolute path") {
		t.Fatalf("err = %v", err)
	}
}

func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "credit.json")
	write := func(data string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		// Set the time explicitly: two writes within the file system's
		// time resolution would otherwise look unchanged.
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	write(`[{"customer_id": "C-1", "limit": 1}]`, base)

	src, err := New(adapters.Spec{Name: "credit", Options: options(t, "{path: credit.json, reload: true}"), Files: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	limit := func() any {
		recs := fetch(t, src, aggregator.Key{CustomerID: "C-1"})
		if len(recs) != 1 {
			t.Fatalf("C-1: %v", recs)
		}
		return recs[0]["limit"]
	}
	if got := limit(); got != 1.0 {
		t.Fatalf("limit = %v, want 1", got)
	}

	write(`[{"customer_id": "C-1", "limit": 2}, {"customer_id": "C-9", "limit": 9}]`, base.Add(time.Minute))
	if got := limit(); got != 2.0 {
		t.Fatalf("after the change: limit = %v, want 2", got)
	}
	if got := fetch(t, src, aggregator.Key{CustomerID: "C-9"}); len(got) != 1 {
		t.Fatalf("new record not found after reload: %v", got)
	}

	// A broken version is refused and the last good records stay.
	write(`[{"customer_id": "C-1", "limit": 3},`, base.Add(2*time.Minute))
	if got := limit(); got != 2.0 {
		t.Fatalf("after a broken change: limit = %v, want the previous 2", got)
	}
	// Once fixed, it loads again.
	write(`[{"customer_id": "C-1", "limit": 4}]`, base.Add(3*time.Minute))
	if got := limit(); got != 4.0 {
		t.Fatalf("after the fix: limit = %v, want 4", got)
	}
	// A removed file keeps the records too.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if got := limit(); got != 4.0 {
		t.Fatalf("after removal: limit = %v, want 4", got)
	}
}

func TestNoReloadByDefault(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`[{"customer_id": "C-1", "limit": 1}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := New(adapters.Spec{Name: "c", Options: options(t, "{path: c.json}"), Files: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`[{"customer_id": "C-1", "limit": 2}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, src, aggregator.Key{CustomerID: "C-1"}); got[0]["limit"] != 1.0 {
		t.Fatalf("limit = %v: the file was re-read without reload: true", got[0]["limit"])
	}
}

func TestSampleBuilds(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal(Sample, &doc); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	list := doc.Content[0]
	if list.Kind != yaml.SequenceNode || len(list.Content) == 0 {
		t.Fatal("sample.yaml should be a list of sources")
	}
	// Keep only this kind's options, as configs does.
	common := map[string]bool{"name": true, "type": true, "section": true, "timeout": true, "needs": true, "mapping": true, "cache_ttl": true}
	src := list.Content[0]
	opts := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(src.Content); i += 2 {
		if !common[src.Content[i].Value] {
			opts.Content = append(opts.Content, src.Content[i], src.Content[i+1])
		}
	}
	files := fstest.MapFS{"lists/vip.csv": {Data: []byte("phone,tier,account_manager\n+4930123456,gold,Eva Roth\n")}}
	s, err := New(adapters.Spec{Name: "vip-list", Options: opts, Files: files})
	if err != nil {
		t.Fatalf("sample options do not build: %v", err)
	}
	if got := fetch(t, s, aggregator.Key{Phone: "+4930123456"}); len(got) != 1 || got[0]["tier"] != "gold" {
		t.Fatalf("sample lookup: %v", got)
	}
}

// Lookups run in parallel (one per call and source) while the file is
// being replaced; the race detector checks the index swap.
func TestConcurrentFetchDuringReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	writeVersion := func(v int) {
		data := `[{"customer_id": "C-1", "version": ` + strconv.Itoa(v) + `}]`
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Error(err)
		}
		mod := base.Add(time.Duration(v) * time.Second)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Error(err)
		}
	}
	writeVersion(0)
	src, err := New(adapters.Spec{Name: "c", Options: options(t, "{path: c.json, reload: true}"), Files: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				recs, err := src.Fetch(context.Background(), aggregator.Key{CustomerID: "C-1"})
				if err != nil || len(recs) != 1 {
					t.Errorf("Fetch: %v %v", recs, err)
					return
				}
			}
		}()
	}
	for v := 1; v <= 20; v++ {
		writeVersion(v)
	}
	wg.Wait()
	// After the last write, the next lookup sees the last version.
	if got := fetch(t, src, aggregator.Key{CustomerID: "C-1"}); got[0]["version"] != 20.0 {
		t.Fatalf("version = %v, want 20", got[0]["version"])
	}
}
