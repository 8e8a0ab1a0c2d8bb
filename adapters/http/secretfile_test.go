package httpsource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/screenpop/screenpop/adapters"
)

// bearer_file and basic.password_file: the secret comes from a file (line
// break trimmed), read at every build, so a reload picks up a new one.
func TestAuthFromFiles(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{}`)
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files := os.DirFS(dir)

	write("token", "tok-123\n")
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nauth: {bearer_file: token}", nil, files)
	fetch(t, s, customer)
	if r, _ := ts.lastRequest(); r.Header.Get("Authorization") != "Bearer tok-123" {
		t.Errorf("Authorization = %q, want Bearer tok-123", r.Header.Get("Authorization"))
	}
	write("token", "tok-rotated\n") // the next build (a reload) reads it again
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\nauth: {bearer_file: "+filepath.Join(dir, "token")+"}", nil, nil)
	fetch(t, s, customer)
	if r, _ := ts.lastRequest(); r.Header.Get("Authorization") != "Bearer tok-rotated" {
		t.Errorf("Authorization after the secret changed = %q", r.Header.Get("Authorization"))
	}

	write("pass", "p@ss:word\r\n")
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\nauth:\n  basic: {user: screenpop, password_file: pass}", nil, files)
	fetch(t, s, customer)
	r, _ := ts.lastRequest()
	if user, pass, ok := r.BasicAuth(); !ok || user != "screenpop" || pass != "p@ss:word" {
		t.Errorf("basic auth = %q, %q, %v", user, pass, ok)
	}
}

func TestAuthFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const url = "url: https://crm.example.com/{phone}\n"
	cases := []struct{ name, yaml, want string }{
		{"missing bearer file", url + "auth: {bearer_file: nope}", "line 2, column 1: auth.bearer_file: cannot read file nope: no such file or directory: write the secret in it"},
		{"empty bearer file", url + "auth: {bearer_file: empty}", "line 2, column 1: auth.bearer_file: file empty is empty"},
		{"bearer file and env", url + "auth: {bearer_file: empty, bearer_env: T}", "line 2, column 1: auth: set one of bearer_env, bearer_file or basic, not several"},
		{"bearer file and basic", url + "auth: {bearer_file: empty, basic: {user: u, password_env: P}}", "line 2, column 1: auth: set one of bearer_env, bearer_file or basic, not several"},
		{"password file and env", url + "auth: {basic: {user: u, password_env: P, password_file: empty}}", "line 2, column 1: auth.basic: set password_env or password_file, not both"},
		{"missing password file", url + "auth: {basic: {user: u, password_file: ../pass}}", "line 2, column 1: auth.basic.password_file: file ../pass leaves the configuration's folder"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewSource(adapters.Spec{Name: "x", Options: options(t, c.yaml), Env: env(nil), Files: os.DirFS(dir)})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error = %v, want it to start with %q", err, c.want)
			}
		})
	}
}
