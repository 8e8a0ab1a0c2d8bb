package redisbus

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// redisServer is a throwaway redis-server of the test's own (no
// persistence: a restart comes back empty), which the test may kill,
// restart or pause. It is killed at the end of the test anyway.
type redisServer struct {
	t    testing.TB
	port string
	args []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	paused bool
}

func startRedisServer(t testing.TB, args ...string) *redisServer {
	t.Helper()
	// Its own folder: a replica's full sync writes an RDB file there.
	args = append([]string{"--dir", t.TempDir()}, args...)
	s := &redisServer{t: t, port: freePort(t), args: args}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) addr() string { return "127.0.0.1:" + s.port }

func (s *redisServer) start() {
	s.t.Helper()
	args := append([]string{"--port", s.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"}, s.args...)
	cmd := exec.Command("/usr/bin/redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd, s.paused = cmd, false
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.addr()})
	defer c.Close()
	for range 400 {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	s.t.Fatalf("redis-server on %s did not start", s.port)
}

// kill stops the server at once (SIGKILL): no reply, no goodbye, nothing
// kept.
func (s *redisServer) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	if s.paused {
		s.cmd.Process.Signal(syscall.SIGCONT)
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// pause freezes the server (SIGSTOP): connections stay open, nothing
// answers, until resume.
func (s *redisServer) pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(syscall.SIGSTOP)
	s.paused = true
}

func (s *redisServer) resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd.Process.Signal(syscall.SIGCONT)
	s.paused = false
}

// cpuMeter measures the CPU time this process and a Redis server spend
// over a benchmark: under a loaded machine the wall clock says little,
// the CPU a message costs says what keeping up takes.
type cpuMeter struct {
	client redis.UniversalClient
	self   time.Duration
	redis  float64
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU seconds the server has used; on a cluster, every
// master's.
func redisCPU(c redis.UniversalClient) float64 {
	if cc, ok := c.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		var sum float64
		cc.ForEachMaster(context.Background(), func(_ context.Context, m *redis.Client) error {
			v := redisCPU(m)
			mu.Lock()
			sum += v
			mu.Unlock()
			return nil
		})
		return sum
	}
	info, _ := c.Info(context.Background(), "cpu").Result()
	var sum float64
	for line := range strings.Lines(info) {
		for _, k := range []string{"used_cpu_sys:", "used_cpu_user:"} {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), k); ok {
				f, _ := strconv.ParseFloat(v, 64)
				sum += f
			}
		}
	}
	return sum
}

func startCPU(c redis.UniversalClient) cpuMeter {
	return cpuMeter{client: c, self: processCPU(), redis: redisCPU(c)}
}

func (m cpuMeter) report(b *testing.B) {
	n := float64(b.N)
	b.ReportMetric(float64(processCPU()-m.self)/n, "cpu-ns/op")
	b.ReportMetric((redisCPU(m.client)-m.redis)*1e9/n, "redis-cpu-ns/op")
}

// quietRedisLog keeps go-redis's own complaints (every failed dial while
// a drill has Redis down) out of the test output; the bus logs and counts
// what matters.
type quietRedisLog struct{}

func (quietRedisLog) Printf(context.Context, string, ...any) {}

func init() { redis.SetLogger(quietRedisLog{}) }
