package configs

import (
	"strings"
	"testing"
)

// The redis block's Redis Cluster: cluster_addresses alone, each clash
// at its own line with a fix.
func TestRedisCluster(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"demo"}})
	const head = "telephony: [{name: demo, type: demo}]\n"
	c, err := Parse("x.yaml", []byte(head+"redis:\n  cluster_addresses: [10.0.0.1:6379, 10.0.0.2:6379]\n  password_env: SCREENPOP_REDIS_PASSWORD\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Redis.ClusterAddresses; len(got) != 2 || got[1] != "10.0.0.2:6379" || c.Redis.PasswordEnv != "SCREENPOP_REDIS_PASSWORD" {
		t.Fatalf("decoded %+v", c.Redis)
	}
	for name, tc := range map[string]struct {
		yaml string
		want string
	}{
		"and address": {"redis:\n  address: 127.0.0.1:6379\n  cluster_addresses: [127.0.0.1:7000]\n",
			`x.yaml:4:3: redis.cluster_addresses: set together with address (fix: use address for one Redis, or cluster_addresses`},
		"and sentinel": {"redis:\n  master_name: sp\n  sentinel_addresses: [127.0.0.1:26379]\n  cluster_addresses: [127.0.0.1:7000]\n",
			`x.yaml:5:3: redis.cluster_addresses: set together with master_name or sentinel_addresses`},
		"database": {"redis:\n  cluster_addresses: [127.0.0.1:7000]\n  db: 2\n",
			`x.yaml:4:3: redis.db: 2 with cluster_addresses (fix: a Redis Cluster has database 0 only`},
		"braces": {"redis:\n  cluster_addresses: [127.0.0.1:7000]\n  key_prefix: \"site{a}:\"\n",
			`x.yaml:4:3: redis.key_prefix: "site{a}:" holds { or }`},
		"nothing": {"redis: {key_prefix: x}\n", `or cluster_addresses`},
	} {
		_, err := Parse("x.yaml", []byte(head+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", name, err, tc.want)
		}
	}
}
