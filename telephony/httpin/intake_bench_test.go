package httpin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// countingSink counts the events it gets and keeps none.
type countingSink struct{ n atomic.Int64 }

func (c *countingSink) HandleCall(screenpop.CallEvent) { c.n.Add(1) }

// discardWriter is a ResponseWriter that keeps only the status and
// reuses its header map: what is measured is the handler.
type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// benchSource is a running source with the daemon's defaults and the
// agent patterns of the recordings (PJSIP/<agent>).
func benchSource(b *testing.B) (*Source, *countingSink) {
	b.Helper()
	src, err := New(Config{Tokens: []string{token, otherToken}}, agentOf, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	sink := &countingSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run: %v", err)
		}
	})
	for !src.running() {
		select {
		case err := <-done:
			b.Fatalf("Run returned early: %v", err)
		default:
		}
		// Run sets its sink before it blocks; nothing to wait for but that.
		runtime.Gosched()
	}
	return src, sink
}

// oneCall is the events of one call as a PBX posts them, one request
// each: rung at three phones, answered at one, hung up.
var oneCall = []string{
	`{"event":"ringing","call_id":"pbx-1795426551.0","caller":{"number":"+4930123456","name":"Jane Doe"},"did":"100","endpoints":["PJSIP/1001","PJSIP/1002","PJSIP/1003"]}`,
	`{"event":"answered","call_id":"pbx-1795426551.0","endpoint":"PJSIP/1002"}`,
	`{"event":"ended","call_id":"pbx-1795426551.0","endpoint":"PJSIP/1002","outcome":"answered"}`,
}

// BenchmarkIntake measures the HTTP call-event source's handler, which
// the load harness found to be the largest part of the daemon's CPU per
// call: authentication, body, decoding, checks, translation, delivery.
// One op is one call: three requests of one event each (oneCall).
// handler calls it directly with an in-memory request (what screenpop's
// code costs); loopback posts over a real keep-alive connection to an
// httptest server (what net/http adds, both ends in this process).
//
//	go test -run '^$' -bench Intake -benchmem ./telephony/httpin/
func BenchmarkIntake(b *testing.B) {
	b.Run("handler", func(b *testing.B) {
		src, sink := benchSource(b)
		h := src.Handler()
		bodies := make([][]byte, len(oneCall))
		for i, s := range oneCall {
			bodies[i] = []byte(s)
		}
		header := http.Header{
			"Authorization": {"Bearer " + token},
			"Content-Type":  {"application/json"},
		}
		w := &discardWriter{h: http.Header{}}
		body := &bytes.Reader{}
		req := &http.Request{Method: http.MethodPost, Header: header, RemoteAddr: "127.0.0.1:5060", Body: io.NopCloser(body)}
		req = req.WithContext(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			for _, data := range bodies {
				body.Reset(data)
				req.ContentLength = int64(len(data))
				clear(w.h)
				w.code = 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
		}
		if sink.n.Load() != int64(b.N*len(oneCall)) {
			b.Fatalf("%d events delivered, want %d", sink.n.Load(), b.N*len(oneCall))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/call")
	})
	b.Run("loopback", func(b *testing.B) {
		src, sink := benchSource(b)
		srv := httptest.NewServer(src.Handler())
		b.Cleanup(srv.Close)
		client := srv.Client()
		b.ReportAllocs()
		for b.Loop() {
			for _, data := range oneCall {
				req, err := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		}
		if sink.n.Load() != int64(b.N*len(oneCall)) {
			b.Fatalf("%d events delivered, want %d", sink.n.Load(), b.N*len(oneCall))
		}
	})
}

// BenchmarkIntakeBatch is BenchmarkIntake's handler with the events of
// 100 calls in one request (an array of 300), as a CTI server that
// batches posts them. One op is one request.
func BenchmarkIntakeBatch(b *testing.B) {
	src, sink := benchSource(b)
	h := src.Handler()
	var batch strings.Builder
	batch.WriteByte('[')
	for i := range 100 {
		for j, ev := range oneCall {
			if i > 0 || j > 0 {
				batch.WriteByte(',')
			}
			batch.WriteString(strings.ReplaceAll(ev, "pbx-1795426551.0", fmt.Sprintf("pbx-%d", i)))
		}
	}
	batch.WriteByte(']')
	data := []byte(batch.String())
	w := &discardWriter{h: http.Header{}}
	body := &bytes.Reader{}
	req := &http.Request{Method: http.MethodPost, Header: http.Header{
		"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"},
	}, RemoteAddr: "127.0.0.1:5060", Body: io.NopCloser(body)}
	req = req.WithContext(context.Background())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(data)
		clear(w.h)
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	if sink.n.Load() != int64(b.N*300) {
		b.Fatalf("%d events delivered, want %d", sink.n.Load(), b.N*300)
	}
}
