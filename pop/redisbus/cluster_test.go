package redisbus

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/internal/redistest"
	"github.com/screenpop/screenpop/pop"
)

// TestKeySlot: the hash slots the bus computes are Redis Cluster's (the
// examples of the cluster specification), and slotTag finds a tag for
// every slot.
func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":            0x31C3 & (clusterSlots - 1), // the CRC16 check value
		"foo":                  12182,
		"{user1000}.following": keySlot("user1000"),
		"foo{{bar}}zap":        keySlot("{bar"),
		"foo{bar}{zap}":        keySlot("bar"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("foo{}{bar}") == keySlot("bar") {
		t.Error("an empty hash tag must not be taken for one")
	}
	covered := make([]bool, clusterSlots)
	left := clusterSlots
	for n := 0; left > 0; n++ {
		if n > 1_000_000 {
			t.Fatalf("%d slots have no decimal tag below 1000000", left)
		}
		if s := keySlot(strconv.Itoa(n)); !covered[s] {
			covered[s], left = true, left-1
		}
	}
	for _, s := range []int{0, 1, 5460, 5461, 10922, 10923, 16383} {
		if got := keySlot("p:epoch:{" + slotTag(s) + "}"); got != s {
			t.Errorf("the epoch key for slot %d is in slot %d", s, got)
		}
	}
}

// clusterClient makes a daemon's client for cl as screenpopd does
// (rediscache.NewClient with cluster addresses), with the drills' short
// timeouts; one seed node, the others learned from it.
func clusterClient(t *testing.T, cl *redistest.Cluster) func() redis.UniversalClient {
	return func() redis.UniversalClient {
		c, err := rediscache.NewClient(rediscache.ClientConfig{ClusterAddrs: cl.Addrs()[:1],
			DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// TestCluster: the bus on a Redis Cluster of three masters started by the
// test (no replicas: a master that dies takes its slots with it until it
// is back, so there is no failover to drill here; Sentinel's is
// TestSentinelFailover).
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; drills take seconds")
	}
	cl := redistest.StartCluster(t, 3)
	client := clusterClient(t, cl)

	// An agent's keys are in one slot, which CLUSTER KEYSLOT agrees with;
	// agents spread over the masters.
	t.Run("KeySlots", func(t *testing.T) {
		masters := map[*redistest.Node]bool{}
		rc := redis.NewClient(&redis.Options{Addr: cl.Nodes[0].Addr()})
		defer rc.Close()
		for i := range 12 {
			k := keysOf("p:", "agent-"+strconv.Itoa(i))
			slot := keySlot(k.stream)
			for _, key := range []string{k.stream, k.meta, k.pops, k.dedup + "0123"} {
				if got, err := rc.ClusterKeySlot(context.Background(), key).Result(); err != nil || int(got) != slot {
					t.Fatalf("CLUSTER KEYSLOT %s = %d (%v), want %d, the agent's slot", key, got, err, slot)
				}
			}
			masters[cl.NodeOf(t, k.stream)] = true
		}
		if len(masters) != 3 {
			t.Errorf("12 agents on %d masters, want 3", len(masters))
		}
	})

	// Calls flow through two daemons, four browsers spread over both: one
	// pop per ring, every end told, nothing back after its end; and no
	// daemon takes the cluster for another server (each master is asked
	// for its own run_id).
	t.Run("Drill", func(t *testing.T) {
		t.Cleanup(func() { cl.Flush(t) })
		a, b := runDrillOn(t, "", client, time.Second, time.Second, func(*daemon, *daemon) { time.Sleep(time.Second) })
		dedup := 0.0
		for name, d := range map[string]*daemon{"a": a, "b": b} {
			if n := counter(d.bus.metrics.delivered.WithLabelValues(pathLocalFallback)); n != 0 {
				t.Errorf("daemon %s fell back for %v messages on a healthy cluster", name, n)
			}
			for _, cause := range []string{causeRecovered, causeDataLost, causeNewPrimary} {
				if n := counter(d.bus.metrics.resyncs.WithLabelValues(cause)); n != 0 {
					t.Errorf("daemon %s resynced %v times (%s) on a healthy cluster", name, n, cause)
				}
			}
			if keys, _ := d.bus.knownEpoch(); len(keys) != 3 {
				t.Errorf("daemon %s knows epoch keys %v, want one per master", name, keys)
			}
			dedup += counter(d.bus.metrics.deduplicated)
		}
		if dedup == 0 {
			t.Error("calls both daemons saw were never de-duplicated")
		}
	})

	// A master restarted empty while both daemons run (and before either
	// takes Redis for down): its epoch key is gone, both put back what
	// they know, and a browser connecting to the daemon that never saw the
	// call gets it in its snapshot from the restarted master.
	t.Run("MasterRestartedEmpty", func(t *testing.T) {
		t.Cleanup(func() { cl.Flush(t) })
		patient := daemonOpts{client: client, bus: func(c *Config) { c.DownAfter = time.Minute }}
		a, b := startDaemonOpts(t, "", "lost:", patient), startDaemonOpts(t, "", "lost:", patient)
		for _, d := range []*daemon{a, b} {
			waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
		}
		ws := browser(t, b, "7001", "")
		expect(t, ws, pop.TypeSnapshot, "")
		a.disp.HandleCall(ring("call-1", "7001"))
		expect(t, ws, pop.TypePop, "call-1")

		master := cl.NodeOf(t, keysOf("lost:", "7001").pops)
		master.Kill()
		master.Start(t)
		cl.WaitOK(t)
		for name, d := range map[string]*daemon{"a": a, "b": b} {
			waitFor(t, "daemon "+name+" to put back what the master lost", func() bool {
				return counter(d.bus.metrics.resyncs.WithLabelValues(causeDataLost)) > 0 && d.bus.Ready() == nil
			})
		}
		var snap pop.SnapshotData
		if err := json.Unmarshal(expect(t, browser(t, b, "7001", ""), pop.TypeSnapshot, "").Data, &snap); err != nil {
			t.Fatal(err)
		}
		if len(snap.Pops) != 1 || snap.Pops[0].CallID != "call-1" {
			t.Fatalf("snapshot after the master lost its data: %+v, want call-1 ringing", snap.Pops)
		}
	})

	// Browser requests about a call only the other daemon knows are
	// claimed and answered through the cluster's pub/sub; a call nobody
	// knows is unknown_call.
	t.Run("ForwardedRequests", func(t *testing.T) {
		t.Cleanup(func() { cl.Flush(t) })
		recA := &noteRecorder{}
		opts := func(rec *noteRecorder) daemonOpts {
			return daemonOpts{client: client, disp: func(c *pop.DispatcherConfig) { c.Builder, c.Recorder = ambiguousBuilder{}, rec }}
		}
		a, b := startDaemonOpts(t, "", "fwd:", opts(recA)), startDaemonOpts(t, "", "fwd:", opts(&noteRecorder{}))
		for _, d := range []*daemon{a, b} {
			waitFor(t, "bus up and listening", func() bool { return d.bus.Ready() == nil && d.bus.listening.Load() })
		}
		ws := browser(t, b, "5001", "")
		expect(t, ws, pop.TypeSnapshot, "")
		a.disp.HandleCall(ring("call-1", "5001"))
		expect(t, ws, pop.TypePop, "call-1")
		for i := range 5 {
			send(t, ws, pop.Request{Type: pop.RequestNote, CallID: "call-1", Text: "note", Ref: strconv.Itoa(i)})
			expect(t, ws, pop.TypeNoteSaved, "call-1")
		}
		send(t, ws, pop.Request{Type: pop.RequestSelect, CallID: "call-1", CustomerID: "k2"})
		expect(t, ws, pop.TypeCard, "call-1")
		send(t, ws, pop.Request{Type: pop.RequestSelect, CallID: "no-such-call", CustomerID: "k1"})
		expectError(t, ws, "no-such-call", "unknown_call")
		if recA.count() != 5 {
			t.Errorf("%d notes stored by the daemon with the call, want 5", recA.count())
		}
		if n := counter(b.bus.metrics.forwarded.WithLabelValues(forwardClaimed)); n != 6 {
			t.Errorf("forwarded and claimed = %v, want 6", n)
		}
	})
}
