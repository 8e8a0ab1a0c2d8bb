package httpsource

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/adapters"
)

// options builds a source's option node from YAML text, as the
// configuration loader hands it over.
func options(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return doc.Content[0]
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func newTestSource(t *testing.T, text string, vars map[string]string, files fs.FS) *Source {
	t.Helper()
	s, err := NewSource(adapters.Spec{Name: "test-api", Options: options(t, text), Env: env(vars), Files: files})
	if err != nil {
		t.Fatalf("NewSource: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// writePEM writes DER blocks as PEM into dir/name and returns the path.
func writePEM(t *testing.T, dir, name, blockType string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	der  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "screenpop test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, der: der}
}

// clientCert issues a client certificate and returns its DER and key DER.
func (ca *testCA) clientCert(t *testing.T, cn string) (certDER, keyDER []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certDER, err = x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err = x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certDER, keyDER
}

// commonKeys are the source keys the configuration loader keeps for itself;
// the rest are the kind's options.
var commonKeys = map[string]bool{
	"name": true, "type": true, "section": true, "timeout": true, "cache_ttl": true, "required": true,
	"needs": true, "max_concurrent": true, "breaker": true, "mapping": true,
}

// sampleSources splits each source of a sample file as the loader does:
// name -> the kind's options (lines kept).
func sampleSources(t *testing.T, sample []byte) map[string]*yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(sample, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]*yaml.Node{}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "sources" {
			continue
		}
		for _, n := range root.Content[i+1].Content {
			name := ""
			rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
			for j := 0; j+1 < len(n.Content); j += 2 {
				k := n.Content[j].Value
				if k == "name" {
					name = n.Content[j+1].Value
				}
				if !commonKeys[k] {
					rest.Content = append(rest.Content, n.Content[j], n.Content[j+1])
				}
			}
			out[name] = rest
		}
	}
	return out
}
