// Package redistest starts a Redis Cluster of a test's own: redis-server
// processes with cluster mode on, joined by redis-cli --cluster create,
// with no persistence (a node restarted comes back empty, as a cache does
// without disks), which the test may kill and restart. Everything stops
// when the test ends.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Patience bounds every wait of this package: a cluster that is not up by
// then never will be (it only bounds a hung test; nothing is timed).
const Patience = 30 * time.Second

// Node is one redis-server of a cluster.
type Node struct {
	bin  string
	port int
	dir  string // its nodes.conf: a restarted node keeps its ID and slots

	standalone bool // StartServer's: not a cluster node

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is the node's host:port.
func (n *Node) Addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// Start starts the node (again, after Kill): same port, same cluster
// configuration, no data. Cluster.WaitOK then waits until it serves.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	args := []string{"--port", strconv.Itoa(n.port), "--bind", "127.0.0.1", "--dir", n.dir,
		"--save", "", "--appendonly", "no", "--logfile", n.logFile()}
	if !n.standalone {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(n.dir, "nodes.conf"))
	}
	cmd := exec.Command(n.bin, args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server on %d: %v", n.port, err)
	}
	n.mu.Lock()
	n.cmd = cmd
	n.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: n.Addr()})
	defer c.Close()
	if !poll(func() bool { return c.Ping(context.Background()).Err() == nil }) {
		log, _ := os.ReadFile(n.logFile())
		t.Fatalf("redis-server on %d did not start: %s", n.port, log)
	}
}

func (n *Node) logFile() string { return filepath.Join(n.dir, "redis.log") }

// Kill stops the node at once (SIGKILL): nothing it held is kept.
func (n *Node) Kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	n.cmd.Wait()
	n.cmd = nil
}

// StartServer starts a plain redis-server of the test's own on a free
// port (nothing persisted), stopped when the test ends. Kill and Start
// stop it and start it again empty, on the same port: Redis restarting.
func StartServer(t testing.TB) *Node {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("the test needs redis-server: %v", err)
	}
	n := &Node{bin: server, port: freeClusterPort(t), dir: t.TempDir(), standalone: true}
	t.Cleanup(n.Kill)
	n.Start(t)
	return n
}

// Cluster is a Redis Cluster of masters only (no replicas: a node that
// dies takes its slots with it until it is back).
type Cluster struct {
	Nodes []*Node
}

// StartCluster starts masters redis-server processes (at least three, as
// redis-cli requires), joins them into a cluster that shares the 16384
// slots, and waits until every node says cluster_state:ok. Without
// redis-server and redis-cli the test fails.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("a Redis Cluster test needs redis-server: %v", err)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("a Redis Cluster test needs redis-cli: %v", err)
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range masters {
		n := &Node{bin: server, port: freeClusterPort(t), dir: t.TempDir()}
		t.Cleanup(n.Kill)
		n.Start(t)
		c.Nodes = append(c.Nodes, n)
		args = append(args, n.Addr())
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), Patience)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	c.WaitOK(t)
	return c
}

// Addrs are the nodes' host:ports, the seeds a cluster client starts from.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// WaitOK waits until every node that runs says cluster_state:ok and
// knows every other node's slots (CLUSTER SLOTS covers all 16384).
func (c *Cluster) WaitOK(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes {
		n.mu.Lock()
		running := n.cmd != nil
		n.mu.Unlock()
		if !running {
			continue
		}
		nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		var last string
		ok := poll(func() bool {
			ctx := context.Background()
			info, err := nc.ClusterInfo(ctx).Result()
			if err != nil || !strings.Contains(info, "cluster_state:ok") {
				last = fmt.Sprint(info, err)
				return false
			}
			slots, err := nc.ClusterSlots(ctx).Result()
			covered := 0
			for _, s := range slots {
				covered += int(s.End - s.Start + 1)
			}
			last = fmt.Sprintf("%d slots covered, %v", covered, err)
			return err == nil && covered == 16384
		})
		nc.Close()
		if !ok {
			t.Fatalf("cluster node %s not ready: %s", n.Addr(), last)
		}
	}
}

// NodeOf is the node that holds key's slot.
func (c *Cluster) NodeOf(t testing.TB, key string) *Node {
	t.Helper()
	ctx := context.Background()
	nc := redis.NewClient(&redis.Options{Addr: c.Nodes[0].Addr()})
	defer nc.Close()
	slot, err := nc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
	}
	slots, err := nc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("CLUSTER SLOTS: %v", err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			for _, n := range c.Nodes {
				if n.Addr() == s.Nodes[0].Addr {
					return n
				}
			}
		}
	}
	t.Fatalf("no node holds slot %d of %s", slot, key)
	return nil
}

// Keys lists the keys matching pattern on every node: SCAN, node by node,
// as on a cluster no one node holds them all.
func (c *Cluster) Keys(t testing.TB, pattern string) []string {
	t.Helper()
	var keys []string
	for _, n := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		iter := nc.Scan(context.Background(), 0, pattern, 1000).Iterator()
		for iter.Next(context.Background()) {
			keys = append(keys, iter.Val())
		}
		err := iter.Err()
		nc.Close()
		if err != nil {
			t.Fatalf("SCAN on %s: %v", n.Addr(), err)
		}
	}
	return keys
}

// Flush empties every node (FLUSHALL): the next test on the same cluster
// starts from nothing.
func (c *Cluster) Flush(t testing.TB) {
	t.Helper()
	for _, n := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr()})
		err := nc.FlushAll(context.Background()).Err()
		nc.Close()
		if err != nil {
			t.Fatalf("FLUSHALL on %s: %v", n.Addr(), err)
		}
	}
}

// freeClusterPort finds a port that is free, and whose cluster bus port
// (port + 10000) is free too.
func freeClusterPort(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		bus, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000))
		l.Close()
		if err != nil {
			continue
		}
		bus.Close()
		return port
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

// poll calls ok until it reports true, for Patience at most.
func poll(ok func() bool) bool {
	for deadline := time.Now().Add(Patience); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return false
}
