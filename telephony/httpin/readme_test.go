package httpin

import (
	"net/http"
	"os"
	"strings"
	"testing"
)

// Every curl of the README's examples is sent as curl sends it, and gets
// the answer the README shows: a PBX integrator copies them first.
func TestReadmeCurlExamples(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, examples, ok := strings.Cut(string(readme), "## Examples\n")
	if !ok {
		t.Fatal("README.md has no ## Examples")
	}
	_, block, ok := strings.Cut(examples, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md's examples have no ```sh block")
	}
	f := start(t, agentOf)
	var curls int
	lines := strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(line, "curl ") {
			continue
		}
		// A single-quoted body may run over several lines.
		for strings.Count(line, "'")%2 == 1 && i+1 < len(lines) {
			i++
			line += "\n" + lines[i]
		}
		want := ""
		if i+1 < len(lines) && strings.HasPrefix(lines[i+1], "# {") {
			want = strings.TrimPrefix(lines[i+1], "# ")
		}
		curls++
		status, body := sendAsCurl(t, f.srv.URL, line)
		if status/100 != 2 || (want != "" && strings.TrimSpace(body) != want) {
			t.Errorf("README example %d: %s\n  answered %d %s, want 2xx %s", curls, line, status, strings.TrimSpace(body), want)
		}
	}
	if curls < 4 {
		t.Fatalf("found %d curl examples in README.md, want at least 4", curls)
	}
	if got := len(f.sink.take()); got == 0 {
		t.Error("the examples delivered no event")
	}
}

// sendAsCurl sends what a `curl -sS -H ... -d ... $URL` line sends: -d
// makes a POST with curl's default Content-Type unless a -H sets one.
func sendAsCurl(t *testing.T, url, line string) (int, string) {
	t.Helper()
	args := shellWords(t, line)
	var headers [][2]string
	var body string
	hasBody := false
	for i := 1; i < len(args); i++ {
		switch a := args[i]; a {
		case "-sS", "-s", "-S":
		case "-H":
			i++
			k, v, _ := strings.Cut(args[i], ":")
			headers = append(headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
		case "-d", "--data":
			i++
			body, hasBody = args[i], true
		case "$URL":
		default:
			t.Fatalf("curl option %q not understood by this test: %s", a, line)
		}
	}
	if !hasBody {
		t.Fatalf("curl without -d: %s", line)
	}
	contentType := "application/x-www-form-urlencoded" // curl's for -d
	auth := ""
	for _, h := range headers {
		switch http.CanonicalHeaderKey(h[0]) {
		case "Content-Type":
			contentType = h[1]
		case "Authorization":
			auth = strings.ReplaceAll(h[1], "$TOKEN", token)
		default:
			t.Fatalf("header %q not understood by this test", h[0])
		}
	}
	return do(t, url, http.MethodPost, auth, contentType, body)
}

// shellWords splits a command line as sh does for what the README uses:
// blanks, 'single' and "double" quotes (with $VAR left as written).
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unclosed quote in %s", line)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
