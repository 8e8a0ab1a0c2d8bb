package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// `config check` on a file of configs/testdata: the problems configs finds
// (configs' TestInvalidConfigs) and those the kinds find in their own
// options, in one pass, in file order, each at the line and column of its
// key.
func TestConfigCheckInvalidFiles(t *testing.T) {
	const file = "../../configs/testdata/invalid-kind-options.yaml"
	want := strings.Join([]string{
		file + `:5:48: telephony[0] (demo): unknown option "intervall" (did you mean "interval"?)`,
		file + `:16:5: sources[0] (vip): timeout: expected a duration such as 800ms, 2s or 5m, got "fast"`,
		file + `:18:5: sources[0] (vip): unknown option "matsh" (did you mean "match"?)`,
		file + `:22:5: sources[1] (crm): url: unknown parameter {phonee} (known parameters: {phone}, {national}, {region}, {customer_id})`,
		file + `:26:5: sources[2] (sales): format "xlsx" is not supported (use csv or json)`,
		"5 problem(s) found",
	}, "\n") + "\n"
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", file}, &out, &errOut, noEnv); err == nil {
		t.Fatal("the file passed the check")
	}
	if errOut.String() != want {
		t.Errorf("config check:\n%s\nwant:\n%s", errOut.String(), want)
	}
}

// secretCheck writes file, then for each value of variable and the
// problem it must give (at the start of stderr) runs config check and the
// daemon: both refuse, in the same words. With good, config check passes.
func secretCheck(t *testing.T, file, variable string, want map[string]string, good string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "screenpop.yaml")
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	for value, w := range want {
		env := func(k string) string { return map[string]string{variable: value}[k] }
		for _, args := range [][]string{{"config", "check", "-config", path}, {"-config", path}} {
			var out, errOut bytes.Buffer
			if err := run(context.Background(), args, &out, &errOut, env); err == nil {
				t.Errorf("%v with %s=%q: passed", args, variable, value)
			}
			if w = strings.ReplaceAll(w, "FILE", path); !strings.HasPrefix(errOut.String(), w) {
				t.Errorf("%v with %s=%q:\n%s\nwant it to start with:\n%s", args, variable, value, errOut.String(), w)
			}
		}
	}
	var out, errOut bytes.Buffer
	env := func(k string) string { return map[string]string{variable: good}[k] }
	if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, env); err != nil {
		t.Errorf("%s=%q: %v\n%s", variable, good, err, errOut.String())
	}
}

// config check reads the signing secret as the daemon does: a file the
// daemon would refuse to start on (the variable unset, or too short) is
// not reported OK.
func TestConfigCheckReadsTheSigningSecret(t *testing.T) {
	secretCheck(t, "region: DE\nauth:\n  secret_env: SP_SECRET\ntelephony:\n  - {name: demo, type: demo, agents: [\"1001\"]}\n", "SP_SECRET", map[string]string{
		"":      `FILE:3:3: auth.secret_env: environment variable SP_SECRET is empty or unset (fix: export it with at least 32 random bytes, e.g. export SP_SECRET=$(openssl rand -hex 32))`,
		"short": `FILE:3:3: auth.secret_env: the secret in SP_SECRET is 5 bytes; use at least 32 random bytes (fix: `,
	}, strings.Repeat("s", 32))
}

// The redis block's encryption key too: named and unset (never taken for
// "store in clear"), or not a key. Nothing is dialled: the daemon refuses
// before it connects. An unset password_env is no password: the good case
// passes with RPW unset.
func TestConfigCheckReadsTheRedisKey(t *testing.T) {
	secretCheck(t, "region: DE\nauth: {demo_links: true}\ntelephony:\n  - {name: demo, type: demo, agents: [\"1001\"]}\n"+
		"redis:\n  address: 127.0.0.1:1\n  password_env: RPW\n  encryption_key_env: RKEY\n", "RKEY", map[string]string{
		"":         `FILE:8:3: redis.encryption_key_env: RKEY: no encryption key given (base64 of 32 random bytes, e.g. openssl rand -base64 32) (fix: export RKEY=$(openssl rand -base64 32) (keys to rotate out follow it, comma-separated), or remove encryption_key_env to store cards in clear)`,
		"c2hvcnQ=": `FILE:8:3: redis.encryption_key_env: RKEY: key 1 is not 32 bytes in base64`,
	}, base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)))
}

// The daemon refusing to start and a refused reload say it in the words
// of `config check`.
func TestStartAndReloadErrorsReadAsConfigCheck(t *testing.T) {
	var out, errOut bytes.Buffer
	const file = "../../configs/testdata/invalid-unknown-key.yaml"
	if err := run(context.Background(), []string{"-config", file}, &out, &errOut, noEnv); err == nil {
		t.Fatal("the daemon started on an invalid file")
	}
	if want := file + `:2:1: unknown option "regoin" (did you mean "region"?)` + "\n"; errOut.String() != want {
		t.Errorf("start-up: %q, want %q", errOut.String(), want)
	}
	// The file named alone, as the usage allows (screenpopd [run] FILE):
	// the same file is read, the same words said.
	startErr := errOut.String()
	errOut.Reset()
	if err := run(context.Background(), []string{file}, &out, &errOut, noEnv); err == nil || errOut.String() != startErr {
		t.Errorf("screenpopd FILE: err %v, %q, want %q", err, errOut.String(), startErr)
	}
	// A file that is not there is said to be missing, not an unknown command;
	// a mistyped command is still one.
	errOut.Reset()
	missing := filepath.Join(t.TempDir(), "screenpop.yaml")
	if err := run(context.Background(), []string{missing}, &out, &errOut, noEnv); err == nil || !strings.Contains(errOut.String(), missing) || strings.Contains(errOut.String()+err.Error(), "unknown command") {
		t.Errorf("screenpopd MISSING.yaml: err %v, %q: want the file said missing", err, errOut.String())
	}
	if err := run(context.Background(), []string{"sampel", "http"}, &out, &errOut, noEnv); err == nil || !strings.Contains(err.Error(), `unknown command "sampel"`) {
		t.Errorf("screenpopd sampel: err %v, want an unknown command", err)
	}
	errOut.Reset()

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "customers.csv"), []byte("id,phone,name\nc1,+4930123456,Jane Doe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "screenpop.yaml")
	const base = `auth: {demo_links: true}
telephony:
  - {name: demo, type: demo, agents: ["1001"]}
sources:
  - {name: crm, type: file, needs: phone, path: customers.csv, match: phone, param: phone}
`
	if err := os.WriteFile(path, []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMain(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := os.WriteFile(path, []byte(base+"  - {name: tickets, type: file, path: customers.csv, matsh: phone}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	next, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	err = m.Reload(next)
	if want := path + `:6:54: sources[1] (tickets): unknown option "matsh" (did you mean "match"?)`; err == nil || err.Error() != want {
		t.Errorf("reload: %v, want %s", err, want)
	}
}
