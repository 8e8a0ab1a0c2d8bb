package configs

import (
	"strings"
	"testing"
	"time"
)

// The redis block: one server or Sentinel, never both, addresses that can
// be dialled, and a down_after that tells a stall from an outage.
func TestRedisBlock(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"demo"}})
	const head = "telephony: [{name: demo, type: demo}]\n"
	for name, tc := range map[string]struct {
		yaml string
		want []string
	}{
		"neither": {"redis: {key_prefix: x}\n", []string{`redis.address: missing`}},
		"both": {"redis: {address: 127.0.0.1:6379, master_name: sp, sentinel_addresses: [127.0.0.1:26379]}\n",
			[]string{`redis.master_name: set together with address`}},
		"no sentinels":  {"redis: {master_name: sp}\n", []string{`redis.sentinel_addresses: missing`}},
		"no name":       {"redis: {sentinel_addresses: [127.0.0.1:26379]}\n", []string{`redis.master_name: missing`}},
		"long down":     {"redis: {address: 127.0.0.1:6379, down_after: 5m}\n", []string{`redis.down_after: 5m0s is outside 0..1m`}},
		"sentinel fine": {"redis: {master_name: sp, sentinel_addresses: [127.0.0.1:26379], down_after: 3s}\n", nil},
		// Addresses go-redis would take, then fail to dial on every try.
		"no port": {"redis: {address: localhost}\n", []string{`x.yaml:2:9: redis.address: "localhost" is not host:port (fix: e.g. address: 127.0.0.1:6379`}},
		"sentinel port": {"redis: {master_name: sp, sentinel_addresses: [10.0.0.1:26379, 10.0.0.2:265379]}\n",
			[]string{`redis.sentinel_addresses[1]: "10.0.0.2:265379": port "265379" is not a number in 0..65535`}},
		"cluster port 0": {"redis: {cluster_addresses: [10.0.0.1:0]}\n", []string{`redis.cluster_addresses[0]: "10.0.0.1:0": port 0 cannot be connected to`}},
	} {
		c, err := Parse("x.yaml", []byte(head+tc.yaml), nil)
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if c.Redis.DownAfter != 3*time.Second || c.Redis.MasterName != "sp" {
				t.Errorf("%s: decoded %+v", name, c.Redis)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want %q", name, err, w)
			}
		}
	}
}
