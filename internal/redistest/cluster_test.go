package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestCluster: three masters share the slots, keys land on every one of
// them, and a master killed and started again comes back with its slots
// and without its data.
func TestCluster(t *testing.T) {
	c := StartCluster(t, 3)
	ctx := context.Background()
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	defer cc.Close()
	for i := range 30 {
		if err := cc.Set(ctx, fmt.Sprint("k", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if keys := c.Keys(t, "k*"); len(keys) != 30 {
		t.Fatalf("SCAN over the nodes found %d keys, want 30", len(keys))
	}
	holders := map[*Node]int{}
	for i := range 30 {
		holders[c.NodeOf(t, fmt.Sprint("k", i))]++
	}
	if len(holders) != 3 {
		t.Fatalf("30 keys on %d nodes, want 3", len(holders))
	}

	n := c.NodeOf(t, "k0")
	n.Kill()
	n.Start(t)
	c.WaitOK(t)
	nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
	defer nc.Close()
	if keys, err := nc.Keys(ctx, "*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("the restarted node holds %v (%v), want nothing", keys, err)
	}
	if info := nc.ClusterInfo(ctx).Val(); !strings.Contains(info, "cluster_state:ok") {
		t.Fatalf("the restarted node: %s", info)
	}
	if keys := c.Keys(t, "k*"); len(keys) != 30-holders[n] {
		t.Fatalf("%d keys left, want %d", len(keys), 30-holders[n])
	}
	c.Flush(t)
	if keys := c.Keys(t, "*"); len(keys) != 0 {
		t.Fatalf("after Flush: %v", keys)
	}
}
