package configs

import (
	"strings"
	"testing"
)

// listen is checked as admin.listen is, without the loopback rule: a port
// out of range or an address without one is an error at the key's line,
// not a daemon that fails to start.
func TestListenAddress(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"demo"}})
	for _, tc := range []struct {
		listen string
		want   string // "" accepted
	}{
		{"127.0.0.1:8080", ""},
		{":8080", ""},
		{"0.0.0.0:0", ""},
		{"[::]:443", ""},
		{"127.0.0.1:99999", `listen.yaml:2:1: listen: "127.0.0.1:99999": port "99999" is not a number in 0..65535 (fix: e.g. listen: 127.0.0.1:8080`},
		{"8080", `listen.yaml:2:1: listen: "8080" is not host:port`},
		{"127.0.0.1:http", `port "http" is not a number`},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			text := "telephony: [{name: demo, type: demo}]\n" +
				"listen: \"" + tc.listen + "\"\n"
			_, err := Parse("listen.yaml", []byte(text), nil)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error\n%v\nwant it to contain\n%s", err, tc.want)
			}
		})
	}
}
