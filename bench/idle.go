package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/gorilla/websocket"
)

// idleRow is the memory of a process holding sockets idle agents opened.
type idleRow struct {
	sockets   int
	rss       int64 // resident, bytes
	perSocket float64
	goMem     int64 // daemon: Go heap objects and stacks in use; -1 unknown
	goPer     float64
}

// idleResult is one process's idle-socket measurement.
type idleResult struct {
	kind     targetKind
	baseRSS  int64
	baseGo   int64
	rows     []idleRow
	skipped  []int // levels over the open-file limit
	limitMsg string
}

// caseIdle opens idle agent sockets to a daemon, then to the floor, level
// by level, and reads the process's resident memory at each level once
// every socket has its first messages and the process has settled.
func (h *harness) caseIdle(ctx context.Context, sizes msgSizes, rep *report) error {
	for _, kind := range []targetKind{oneDaemon, floorOnly} {
		r, err := h.idle(ctx, kind, sizes, rep.machine.soft)
		if err != nil {
			return err
		}
		rep.idle = append(rep.idle, r)
	}
	return nil
}

const settle = 5 * time.Second

func (h *harness) idle(ctx context.Context, kind targetKind, sizes msgSizes, fileLimit uint64) (idleResult, error) {
	res := idleResult{kind: kind, baseGo: -1}
	t, err := h.startTarget(ctx, daemonSetup{kind: kind, cached: true, agents: h.opts.Agents}, sizes)
	if err != nil {
		return res, err
	}
	defer t.stop()
	time.Sleep(settle)
	u, err := readUsage(t.procs[0].pid())
	if err != nil {
		return res, err
	}
	res.baseRSS = u.RSS
	if len(t.admin) > 0 {
		if res.baseGo, err = goMemory(ctx, t.admin[0]); err != nil {
			return res, err
		}
	}
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	counted := &agentConns{}
	d := newDialer(512)
	for _, level := range h.opts.Idle {
		// Each socket is a file here and in the process: leave room for
		// the rest of both.
		if fileLimit > 0 && uint64(level)+256 > fileLimit {
			res.skipped = append(res.skipped, level)
			res.limitMsg = fmt.Sprintf("the open-file limit is %d", fileLimit)
			continue
		}
		for k := len(conns); k < level; k++ {
			hd, err := h.header(t, k)
			if err != nil {
				return res, err
			}
			c, resp, err := d.DialContext(ctx, t.wsURL(k), hd)
			if err != nil {
				status := ""
				if resp != nil {
					status = " (HTTP " + resp.Status + ")"
				}
				return res, fmt.Errorf("idle socket %d of %d: %w%s", k+1, level, err, status)
			}
			conns = append(conns, c)
			counted.readers.Add(1)
			go counted.read(k, c, nil)
		}
		if !t.floor {
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			err := counted.waitReceived(wctx, int64(2*level)) // each socket's hello and snapshot
			cancel()
			if err != nil {
				return res, err
			}
		}
		time.Sleep(settle)
		u, err := readUsage(t.procs[0].pid())
		if err != nil {
			return res, err
		}
		row := idleRow{sockets: level, rss: u.RSS, perSocket: float64(u.RSS-res.baseRSS) / float64(level), goMem: -1}
		if len(t.admin) > 0 {
			if row.goMem, err = goMemory(ctx, t.admin[0]); err != nil {
				return res, err
			}
			row.goPer = float64(row.goMem-res.baseGo) / float64(level)
		}
		h.log("    %s: %d idle sockets: RSS %.1f MiB, %.1f KiB per socket", kind, level, float64(u.RSS)/(1<<20), row.perSocket/1024)
		res.rows = append(res.rows, row)
	}
	return res, nil
}
