package webhook_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/analytics-webhooks/webhook"
)

// rawServer accepts TCP connections on loopback and hands each, after the
// request headers are read, to handle. It stops when the test ends.
func rawServer(t *testing.T, handle func(c *net.TCPConn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("the accept loop did not stop within %v", waitTimeout)
		}
	})
	return "http://" + ln.Addr().String() + "/hook"
}

// TestFaults runs one delivery against each kind of misbehaving endpoint
// and checks the state the delivery ends in, that what is kept of the
// response stays bounded, and that no goroutine outlives the test (the
// servers close with each subtest).
func TestFaults(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const timeout = 300 * time.Millisecond
	type want struct {
		status webhook.DeliveryStatus
		code   int
		errHas string
	}
	var endlessWritten atomic.Int64
	chunk := strings.Repeat("z", 32<<10)
	// A TLS handshake under -race on a busy machine can take longer
	// than the short timeout the other cases use.
	timeouts := map[string]time.Duration{"TLS with an untrusted certificate": 10 * time.Second}
	cases := []struct {
		name  string
		url   func(t *testing.T) string
		want  want
		check func(t *testing.T, d *webhook.Delivery)
	}{
		{"500", func(t *testing.T) string {
			return newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", 500) }).URL
		}, want{webhook.StatusRetrying, 500, "HTTP 500"}, nil},
		{"429 with Retry-After", func(t *testing.T) string {
			return newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "600")
				w.WriteHeader(429)
			}).URL
		}, want{webhook.StatusRetrying, 429, "HTTP 429"}, func(t *testing.T, d *webhook.Delivery) {
			assert.Equal(t, d.Attempts[0].StartedAt.Add(600*time.Second), d.NextAttemptAt)
		}},
		{"410", func(t *testing.T) string {
			return newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) }).URL
		}, want{webhook.StatusFailed, 410, "410 Gone"}, nil},
		{"reset before the headers end", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
				_ = c.SetLinger(0) // close with RST
			})
		}, want{webhook.StatusRetrying, 0, "request failed"}, nil},
		{"reset mid-body after a 200", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
				_ = c.SetLinger(0)
			})
		}, want{webhook.StatusDelivered, 200, ""}, func(t *testing.T, d *webhook.Delivery) {
			assert.Equal(t, "partial", d.ResponseBody, "what arrived is kept; the 200 stands")
		}},
		{"accepts and never answers", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) { _, _ = io.Copy(io.Discard, c) })
		}, want{webhook.StatusRetrying, 0, "timed out"}, nil},
		{"slowloris header trickle", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) {
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\n"); err != nil {
					return
				}
				for {
					if _, err := io.WriteString(c, "X"); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
		}, want{webhook.StatusRetrying, 0, "timed out"}, nil},
		{"endless body", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) {
				if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"); err != nil {
					return
				}
				for {
					n, err := io.WriteString(c, chunk)
					endlessWritten.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}, want{webhook.StatusDelivered, 200, ""}, func(t *testing.T, d *webhook.Delivery) {
			assert.Len(t, d.ResponseBody, 1024, "only the configured prefix is kept")
			assert.Less(t, endlessWritten.Load(), int64(16<<20), "the worker stopped reading early")
		}},
		{"invalid HTTP response", func(t *testing.T) string {
			return rawServer(t, func(c *net.TCPConn) { _, _ = io.WriteString(c, "SMTP ready\r\n\r\n") })
		}, want{webhook.StatusRetrying, 0, "malformed HTTP"}, nil},
		{"TLS with an untrusted certificate", func(t *testing.T) string {
			srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			srv.Config.ErrorLog = nil
			t.Cleanup(srv.Close)
			return srv.URL
		}, want{webhook.StatusRetrying, 0, "certificate"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := timeout
			if d, ok := timeouts[tc.name]; ok {
				rt = d
			}
			e := newEnv(t, &webhook.Config{RequestTimeout: rt, MaxResponseBodyBytes: 1024}, nil)
			w := e.hook(t, tc.url(t))
			id := e.trigger(t)[0]
			e.runOnce(t)
			d := e.delivery(t, id)
			assert.Equal(t, tc.want.status, d.Status)
			assert.Equal(t, tc.want.code, d.StatusCode)
			if tc.want.errHas != "" {
				assert.Contains(t, d.Error, tc.want.errHas)
			} else {
				assert.Empty(t, d.Error)
			}
			require.Len(t, d.Attempts, 1)
			assert.LessOrEqual(t, len(d.ResponseBody), 1024)
			if tc.check != nil {
				tc.check(t, d)
			}
			if tc.want.code == 410 {
				got, err := e.svc.Get(t.Context(), w.ID)
				require.NoError(t, err)
				assert.True(t, got.Disabled)
			}
		})
	}
}
