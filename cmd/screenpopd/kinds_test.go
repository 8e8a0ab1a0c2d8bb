package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/configs"
)

// sampleEnv holds every variable the shipped samples name: their secrets
// come from the environment.
var sampleEnv = map[string]string{
	"SCREENPOP_ARI_PASSWORD": "ari-password",
	"SCREENPOP_PBX_TOKENS":   "cti-token-0123456789",
	"ACCOUNTING_DSN":         "postgres://postgres@127.0.0.1:5432/test",
	"CRM_DSN":                "postgres://postgres@127.0.0.1:5432/test",
	"SERVICEDESK_API_KEY":    "servicedesk-key",
	"CREDIT_AGENCY_PASSWORD": "credit-password",
}

func sampleGetenv(k string) string { return sampleEnv[k] }

// Every registered kind has a sample, and every sample a registered kind.
func TestKindMapsHaveSamples(t *testing.T) {
	if got, want := sortedKeys(telephonySamples), sortedKeys(telephonyKinds); !slices.Equal(got, want) {
		t.Errorf("telephony samples %v, telephony kinds %v", got, want)
	}
	if got, want := sortedKeys(samples), sortedKeys(kinds(nil)); !slices.Equal(got, want) {
		t.Errorf("source samples %v, source kinds %v", got, want)
	}
}

// sampleConfig writes a kind's sample into a minimal configuration in a
// fresh folder, with the files the samples refer to, and returns its path.
// A telephony sample is its telephony block; a source sample gets a demo
// telephony source beside it. Neither says how agents sign in (auth/),
// so both get the demo's links, as config check needs a way in.
func sampleConfig(t *testing.T, group string, sample []byte) string {
	t.Helper()
	dir := t.TempDir()
	text := string(sample)
	if group == "source" {
		if !strings.Contains(text, "\nsources:\n") {
			// A bare list of sources (adapters/file).
			text = "sources:\n  " + strings.ReplaceAll(strings.TrimRight(text, "\n"), "\n", "\n  ") + "\n"
		}
		text += "\ntelephony: [{name: demo, type: demo, agents: ['1001']}]\n"
	}
	text += "\nauth: {demo_links: true}\n"
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	ts.Close()
	files := map[string][]byte{
		"config.yaml":           []byte(text),
		"lists/vip.csv":         []byte("phone,tier,account_manager\n+4930123456,gold,Eva Roth\n"),
		"certs/internal-ca.pem": ca,
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "config.yaml")
}

// Each kind's sample decodes cleanly through the kind's own factory (which
// does no I/O), passes `config check` in a minimal configuration, and is
// what `screenpopd sample` prints for it.
func TestSamplesBuildAndPassCheck(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	pools := postgres.NewPools(logger)
	defer pools.Close()
	sourceKinds := kinds(pools)
	for _, g := range sampleGroups {
		for kind, sample := range g.samples {
			t.Run(g.name+"/"+kind, func(t *testing.T) {
				path := sampleConfig(t, g.name, sample)
				cfg, err := configs.Load(path)
				if err != nil {
					t.Fatalf("sample in a minimal configuration:\n%v", err)
				}

				built := 0
				switch g.name {
				case "telephony":
					srcs, err := buildTelephony(cfg, sampleGetenv, logger, prometheus.NewRegistry())
					if err != nil {
						t.Errorf("telephony: %v", err)
					}
					for i, src := range srcs {
						if e := cfg.Telephony[i]; e.Type != kind || src.name != e.Name || src.kind != kind || src.source == nil || (src.handler != nil) != (kind == "http") {
							t.Errorf("telephony entry %+v built as %+v, want a source of the sample's kind %s", e, src, kind)
						}
						built++
					}
				case "source":
					all := cfg.Sources
					if cfg.Directory != nil {
						all = append(all, *cfg.Directory)
					}
					for _, s := range all {
						if s.Type != kind {
							continue // a demo telephony source, or another kind the sample shows beside it
						}
						if _, err := sourceKinds[kind](adapters.Spec{Name: s.Name, Options: s.Options, Files: cfg.Files, Env: sampleGetenv, Logger: logger}); err != nil {
							t.Errorf("source %s: %v", s.Name, err)
						}
						built++
					}
				}
				if built == 0 {
					t.Errorf("the sample of %s %s configures no %s", g.name, kind, kind)
				}

				var out, errOut bytes.Buffer
				if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, sampleGetenv); err != nil {
					t.Errorf("config check of the sample failed:\n%s", errOut.String())
				}

				out.Reset()
				if err := run(context.Background(), []string{"sample", g.name, kind}, &out, &errOut, noEnv); err != nil || !bytes.Equal(out.Bytes(), sample) {
					t.Errorf("sample %s %s: err %v, printed %d bytes, want the %d of the sample", g.name, kind, err, out.Len(), len(sample))
				}
			})
		}
	}
}

// `screenpopd sample KIND` prints a kind whose name is in one group only,
// and asks which group for a name in both; its errors list both groups
// from the maps.
func TestSampleNames(t *testing.T) {
	listed := fmt.Sprintf("telephony kinds: %s; source kinds: %s", kindNames(telephonyKinds), kindNames(kinds(nil)))
	for _, kind := range sortedKeys(telephonyKinds) {
		var out bytes.Buffer
		_, inSources := samples[kind]
		err := printSample([]string{kind}, &out)
		switch {
		case inSources:
			want := fmt.Sprintf("%q is a telephony kind and a source kind: say which, screenpopd sample telephony %s or screenpopd sample source %s", kind, kind, kind)
			if err == nil || err.Error() != want {
				t.Errorf("sample %s: %v, want %s", kind, err, want)
			}
		case err != nil || !bytes.Equal(out.Bytes(), telephonySamples[kind]):
			t.Errorf("sample %s: %v, %q", kind, err, out.String())
		}
	}
	for _, kind := range sortedKeys(samples) {
		var out bytes.Buffer
		if _, inTelephony := telephonySamples[kind]; inTelephony {
			continue
		}
		if err := printSample([]string{kind}, &out); err != nil || !bytes.Equal(out.Bytes(), samples[kind]) {
			t.Errorf("sample %s: %v, %q", kind, err, out.String())
		}
	}
	for args, want := range map[string]string{
		"sip":            fmt.Sprintf(`no kind "sip" (%s)`, listed),
		"":               fmt.Sprintf(`usage: screenpopd sample [telephony|source] KIND (%s)`, listed),
		"pbx ari":        fmt.Sprintf(`usage: screenpopd sample [telephony|source] KIND (%s)`, listed),
		"telephony file": fmt.Sprintf(`no telephony kind "file" (one of: %s)`, kindNames(telephonyKinds)),
		"source ari":     fmt.Sprintf(`no source kind "ari" (one of: %s)`, kindNames(kinds(nil))),
	} {
		err := printSample(strings.Fields(args), &bytes.Buffer{})
		if err == nil || err.Error() != want {
			t.Errorf("sample %s: %v, want %s", args, err, want)
		}
	}
}

// An unknown or missing type is answered with exactly the kinds of the
// maps: the hints are generated, not kept by hand.
func TestUnknownTypeErrorsListTheMaps(t *testing.T) {
	want := func(names ...string) string { return strings.Join(names, ", ") }
	if got := kindNames(telephonyKinds); got != want("ari", "demo", "http") {
		t.Errorf("telephony kinds: %s", got)
	}
	if got := kindNames(kinds(nil)); got != want("file", "http", "postgres") {
		t.Errorf("source kinds: %s", got)
	}
	if !slices.Equal(configs.Known.Telephony, sortedKeys(telephonyKinds)) || !slices.Equal(configs.Known.Sources, sortedKeys(kinds(nil))) {
		t.Errorf("configs.Known = %+v, not the maps' keys", configs.Known)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "types.yaml")
	data := `telephony:
  - {name: pbx, type: sip}
  - {name: cti}
sources:
  - {name: sales, type: oracle}
  - {name: credit}
`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, noEnv); err == nil {
		t.Fatal("missing types passed the check")
	}
	for _, want := range []string{
		path + `:3:5: telephony[1] (cti): type: missing (fix: one of: ` + kindNames(telephonyKinds) + `)`,
		path + `:6:5: sources[1] (credit): type: missing (fix: one of the adapter kinds: ` + kindNames(kinds(nil)) + `)`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("config check output lacks\n  %s\ngot:\n%s", want, errOut.String())
		}
	}

	// Unknown types are reported once the file itself is valid.
	data = strings.ReplaceAll(strings.ReplaceAll(data, "{name: cti}", "{name: demo, type: demo, agents: ['1001']}"), "{name: credit}", "{name: credit, type: file, path: credit.csv, match: id}")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	errOut.Reset()
	if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, noEnv); err == nil {
		t.Fatal("unknown types passed the check")
	}
	for _, want := range []string{
		path + `:2:17: telephony[0] (pbx): type: "sip" is not a telephony type (fix: use one of: ` + kindNames(telephonyKinds) + `)`,
		path + `:5:19: sources[0] (sales): type: "oracle" is not a source type (fix: use one of: ` + kindNames(kinds(nil)) + `)`,
	} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("config check output lacks\n  %s\ngot:\n%s", want, errOut.String())
		}
	}
}
