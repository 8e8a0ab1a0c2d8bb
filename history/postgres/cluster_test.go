package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is a PostgreSQL server of the test's own, in t.TempDir() on a
// free port, that the test can kill like a power cut and start again: the
// server `make test` provides is shared and must stay up.
type cluster struct {
	bin  string // folder of initdb and postgres
	data string
	port int
	log  string
	cred *syscall.Credential // when the test runs as root: PostgreSQL refuses to

	cmd  *exec.Cmd
	done chan struct{}
}

// serverBinaries finds the folder holding initdb and postgres: the newest
// under /usr/lib/postgresql (Debian), or on PATH.
func serverBinaries() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	return ""
}

// newCluster initialises a cluster and starts it; it is killed when the
// test ends. The test is skipped when the server's binaries are absent.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	bin := serverBinaries()
	if bin == "" {
		t.Skip("skipped: the PostgreSQL server binaries (initdb, postgres) are not under /usr/lib/postgresql/*/bin nor on PATH; this test kills and restarts a PostgreSQL of its own (apt-get install postgresql)")
	}
	root := t.TempDir()
	c := &cluster{bin: bin, data: filepath.Join(root, "data"), log: filepath.Join(root, "postgres.log")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("skipped: running as root, and there is no postgres user to run a PostgreSQL of the test's own as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		// The server's user must reach its folder inside root's temp dir.
		for _, d := range []string{filepath.Dir(root), root} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Mkdir(c.data, 0o700); err != nil {
		t.Fatal(err)
	}
	if c.cred != nil {
		if err := os.Chown(c.data, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	initdb := c.command("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	c.start(t)
	t.Cleanup(c.kill)
	return c
}

func (c *cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	// Its own process group, so that kill takes the server's every process
	// at once, as a power cut would.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.cred}
	return cmd
}

// start starts the server and waits until it takes connections; after a
// kill it recovers from its WAL first.
func (c *cluster) start(t *testing.T) {
	t.Helper()
	for try := 1; ; try++ {
		err := c.try()
		if err == nil {
			return
		}
		if try == 10 {
			log, _ := os.ReadFile(c.log)
			t.Fatalf("%v\n%s", err, log)
		}
		// A process of the killed server may still hold its shared
		// memory for a moment.
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *cluster) try() error {
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// fsync off: a killed process loses nothing the kernel has; only a
	// crash of the machine would.
	cmd := c.command("postgres", "-D", c.data, "-p", strconv.Itoa(c.port), "-k", c.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=40")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.cmd, c.done = cmd, done
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			c.cmd = nil
			return errors.New("postgres exited at start")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres does not answer after 60s: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL to every process of the server at once (its children
// are sessions of their own, so a process group would not do): no
// shutdown, no checkpoint, connections cut mid-statement.
func (c *cluster) kill() {
	if c.cmd == nil {
		return
	}
	pid := c.cmd.Process.Pid
	children := childrenOf(pid)
	for _, p := range children {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	<-c.done
	c.cmd = nil
	// Wait until they are gone or zombies, which hold no shared memory.
	for _, p := range children {
		for i := 0; i < 500 && alive(p); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// childrenOf lists the processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _ := procStat(p); ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// procStat returns a process's parent and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, ""
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses.
	rest := string(b[bytes.LastIndexByte(b, ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 2 {
		return 0, ""
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[0]
}

func alive(pid int) bool {
	_, state := procStat(pid)
	return state != "" && state != "Z"
}

// dsn connects to database db of the cluster.
func (c *cluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?connect_timeout=2", c.port, db)
}

// createDB creates a database for one part of a test.
func (c *cluster) createDB(t *testing.T, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return c.dsn(name)
}
