package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binaries are the programs the harness runs as processes of their own, so
// that their CPU time and memory are read from /proc without the
// harness's own in them.
type Binaries struct {
	Daemon string // screenpopd
	Floor  string // popfloor
}

// Build compiles ./cmd/screenpopd and ./bench/cmd/popfloor of the module at
// root into dir. race builds them with the race detector (the smoke test
// under go test -race: the packages are then already compiled that way).
func Build(ctx context.Context, root, dir string, race bool) (Binaries, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/screenpopd", "./bench/cmd/popfloor")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return Binaries{Daemon: filepath.Join(dir, "screenpopd"), Floor: filepath.Join(dir, "popfloor")}, nil
}

// ModuleRoot is the folder of the go.mod the go command finds from the
// working directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the screenpop module: run from the repository (make bench)")
	}
	return filepath.Dir(mod), nil
}

// RaiseFileLimit raises the soft limit of open files to the hard limit:
// every agent socket is a file in the harness and in the process it talks
// to, which inherits the limit. It returns the limits after the change.
func RaiseFileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, lim.Max, err
		}
	}
	return lim.Cur, lim.Max, nil
}

// proc is a program the harness started.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // after done
}

// startProc starts path with args and env (added to the harness's own),
// its output going to logPath. When readyLine is not empty, it waits for a
// line of standard output starting with it and returns the rest of that
// line (the daemon's "screenpop is running: http://..." tells its port).
func startProc(ctx context.Context, name, path string, args, env []string, logPath, readyLine string) (*proc, string, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = logf
	// In the harness's process group: ^C in the terminal stops it too.
	var stdout io.ReadCloser
	if readyLine != "" {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, "", err
		}
	} else {
		cmd.Stdout = logf
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, "", fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	found := make(chan string, 1)
	var copying sync.WaitGroup
	if stdout != nil {
		copying.Add(1)
		go func() {
			defer copying.Done()
			sc := bufio.NewScanner(stdout)
			sent := false
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logf, line)
				if rest, ok := strings.CutPrefix(line, readyLine); ok && !sent {
					found <- strings.TrimSpace(rest)
					sent = true
				}
			}
			_, _ = io.Copy(logf, stdout)
		}()
	}
	go func() {
		copying.Wait() // Wait closes the pipe: read it to the end first
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	if readyLine == "" {
		return p, "", nil
	}
	select {
	case rest := <-found:
		return p, rest, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (%v): see %s%s", name, p.err, logPath, tail(logPath))
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, "", fmt.Errorf("%s not ready within 60s: see %s%s", name, logPath, tail(logPath))
	case <-ctx.Done():
		p.stop()
		return nil, "", context.Cause(ctx)
	}
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n" + string(b)
}

// stop ends the process: SIGTERM (the daemon shuts down cleanly), SIGKILL
// after 15s.
func (p *proc) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// usage is what /proc says of a process at one moment.
type usage struct {
	CPU time.Duration // on a CPU, user and system, all threads
	RSS int64         // bytes resident
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux the harness runs on (the kernel fixes it for user space).
const clockTick = 10 * time.Millisecond

// readUsage reads /proc/<pid>/stat (utime, stime) and /proc/<pid>/status
// (VmRSS).
func readUsage(pid int) (usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, err
	}
	// The command name is in parentheses and may hold spaces: count the
	// fields after its closing one. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return usage{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 {
		return usage{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return usage{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	u := usage{CPU: time.Duration(utime+stime) * clockTick}
	if precise, ok := schedCPU(pid); ok {
		u.CPU = precise
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return usage{}, fmt.Errorf("/proc/%d/status: VmRSS: %w", pid, err)
			}
			u.RSS = kb << 10
		}
	}
	return u, nil
}

// schedCPU is the time the threads of pid have spent on a CPU, to the
// nanosecond: the sum of /proc/<pid>/task/*/schedstat. /proc/<pid>/stat
// counts in ticks of 10 ms, too coarse for the idle CPU of a second and a
// half. A thread that ended took its time with it (Go ends threads only in
// rare cases): ok is false when nothing could be read.
func schedCPU(pid int) (time.Duration, bool) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, false
	}
	var total int64
	read := 0
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		total += ns
		read++
	}
	return time.Duration(total), read > 0
}

// freePort is a loopback port nothing listens on now. Another process may
// take it before the caller does; for a benchmark on one machine that is
// a risk worth the simplicity.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts a redis-server of the harness's own on a free port,
// with nothing persisted.
func startRedis(ctx context.Context, dir string) (*proc, string, error) {
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", fmt.Errorf("redis-server not found (make services installs it): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	p, _, err := startProc(ctx, "redis-server", path,
		[]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir},
		nil, filepath.Join(dir, fmt.Sprintf("redis-%d.log", port)), "")
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			if err == nil && strings.HasPrefix(string(buf[:n]), "+PONG") {
				return p, addr, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, "", fmt.Errorf("redis-server on %s does not answer PING: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
