// Package hostile is the hostile-client suite: every attack of the
// security review run against the real binary on loopback, asserting what
// must hold: the attacker is closed with the documented code, throttled or
// refused with the documented status and Retry-After; the server's memory
// stays bounded; well-behaved clients on the same node still get every
// message; the API refuses what it must; and the relevant metric counted
// the event. Tests wait for events (a frame, a close, a metric value),
// never for fixed times, and assert counts, codes and bytes.
package hostile

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/procstat"
	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/internal/wstest"
)

const secret = "hostile-suite-secret-that-is-long-enough-for-hs256"

// fileLimit is the test process's open-file limit (soft, raised to the
// hard one by TestMain): tests that open many sockets size themselves to
// it.
var fileLimit uint64

func TestMain(m *testing.M) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err == nil {
		if r.Cur < r.Max {
			r.Cur = r.Max
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
		}
		fileLimit = r.Cur
	}
	os.Exit(m.Run())
}

// needFiles skips the test when this process may not open n more files.
func needFiles(t *testing.T, n int) {
	t.Helper()
	if fileLimit < uint64(n)+256 {
		t.Skipf("needs %d open files, the limit is %d", n+256, fileLimit)
	}
}

// node is a running herald with its addresses.
type node struct {
	*testutil.Proc
	t   *testing.T
	API string // http://host:port
	WS  string // host:port of the plain WebSocket listener
	TLS string // host:port of the TLS listener, when started with one
	// Roots trusts the TLS listener's certificate.
	Roots *x509.CertPool
}

// startRaw runs `herald serve` with exactly args (plus the listener
// placeholders the caller put there) and waits for the API when one was
// asked for.
func startRaw(t *testing.T, args ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	p := testutil.Start(t, bin, append([]string{"serve"}, args...)...)
	n := &node{Proc: p, t: t, WS: p.Addr, TLS: p.Extra["tls"]}
	if a, ok := p.Extra["api"]; ok {
		n.API = "http://" + a
		waitHTTP(t, n.API+"/healthz")
	}
	return n
}

// startTLS makes a development certificate with `herald gencert` and runs
// start with a TLS listener on loopback too.
func startTLS(t *testing.T, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	dir := t.TempDir()
	cert, key, roots := testutil.DevCert(t, bin, dir)
	n := start(t, append([]string{"--tls-listen", "127.0.0.1:{port:tls}", "--tls-cert", cert, "--tls-key", key}, extra...)...)
	n.Roots = roots
	return n
}

// tlsConfig trusts the node's certificate.
func (n *node) tlsConfig() *tls.Config {
	return &tls.Config{RootCAs: n.Roots, ServerName: "127.0.0.1"}
}

// start runs a push node on loopback with the API on loopback, an HS256
// secret and the demo off, plus extra flags.
func start(t *testing.T, extra ...string) *node {
	t.Helper()
	return startRaw(t, append([]string{"--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--log-level=warn", "--jwt-secret", secret, "--demo=false"}, extra...)...)
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", u)
}

// mustExit runs the binary with args and expects it to exit with an error
// within 10 s; it returns what it printed. A binary still running then is
// killed and the test fails.
func mustExit(t *testing.T, env []string, args ...string) string {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("herald %s kept running; want it to refuse to start\n%s", strings.Join(args, " "), out)
	}
	if err == nil {
		t.Fatalf("herald %s exited 0; want it to refuse to start\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// pid is the server's process id.
func (n *node) pid() int { return n.Cmd.Process.Pid }

// peakRSS is the server's peak resident memory (VmHWM), in bytes.
func (n *node) peakRSS() int64 {
	n.t.Helper()
	st, err := procstat.Read(n.pid())
	if err != nil {
		n.t.Fatal(err)
	}
	return st.PeakRSS
}

// rss is the server's resident memory now (VmRSS), in bytes.
func (n *node) rss() int64 {
	n.t.Helper()
	st, err := procstat.Read(n.pid())
	if err != nil {
		n.t.Fatal(err)
	}
	return st.RSS
}

// openFiles counts the server's open file descriptors.
func (n *node) openFiles() int {
	n.t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.pid()))
	if err != nil {
		n.t.Fatal(err)
	}
	return len(ents)
}

// token signs an HS256 token with the suite's secret.
func token(t *testing.T, spec auth.TokenSpec) string {
	t.Helper()
	if spec.IssuedAt.IsZero() {
		spec.IssuedAt = time.Now()
	}
	tok, err := auth.Sign([]byte(secret), spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// ---- metrics ----

// metrics scrapes /metrics: "name{labels}" as printed → value.
func (n *node) metrics() map[string]float64 {
	n.t.Helper()
	resp, err := http.Get(n.API + "/metrics")
	if err != nil {
		n.t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		var v float64
		fmt.Sscan(line[i+1:], &v)
		out[line[:i]] = v
	}
	return out
}

// metric reads one sample ("herald_x_total{reason=\"y\"}"); the test fails
// when the node does not export it.
func (n *node) metric(name string) float64 {
	n.t.Helper()
	v, ok := n.metrics()[name]
	if !ok {
		n.t.Fatalf("metric %s is not exported", name)
	}
	return v
}

// expectMetric checks, without stopping the test, that the sample is at
// least want.
func (n *node) expectMetric(name string, want float64) {
	n.t.Helper()
	v, ok := n.metrics()[name]
	switch {
	case !ok:
		n.t.Errorf("metric %s is not exported", name)
	case v < want:
		n.t.Errorf("metric %s = %v, want >= %v", name, v, want)
	}
}

// waitMetric waits until the sample reaches at least want and returns it;
// the test fails after 15 s (or at once when the metric does not exist).
func (n *node) waitMetric(name string, want float64) float64 {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v := n.metric(name)
		if v >= want {
			return v
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("metric %s = %v, want >= %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func disconnects(reason string) string {
	return `herald_disconnects_total{reason="` + reason + `"}`
}

func refusals(limit string) string {
	return `herald_limit_refusals_total{limit="` + limit + `"}`
}

// ---- HTTP API ----

func (n *node) call(method, path, body string, hdr map[string]string) (int, http.Header, string) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.API+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v // net/http sends req.Host, not a Host header
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// publish posts body to channel and returns the HTTP status and answer.
func (n *node) publish(channel, body string) (int, string) {
	n.t.Helper()
	st, _, b := n.call("POST", "/api/publish?channel="+url.QueryEscape(channel), body, map[string]string{"Content-Type": "text/plain"})
	return st, b
}

func (n *node) mustPublish(channel, body string) {
	n.t.Helper()
	if st, b := n.publish(channel, body); st != 200 {
		n.t.Fatalf("publish to %s: %d %s", channel, st, b)
	}
}

// channelInfo is one entry of GET /api/channels.
type channelInfo struct {
	Name   string `json:"name"`
	Offset uint64 `json:"offset"`
}

func (n *node) channels(query string) []channelInfo {
	n.t.Helper()
	st, _, b := n.call("GET", "/api/channels"+query, "", nil)
	if st != 200 {
		n.t.Fatalf("GET /api/channels%s: %d %s", query, st, b)
	}
	var out struct {
		Channels []channelInfo `json:"channels"`
	}
	if err := json.Unmarshal([]byte(b), &out); err != nil {
		n.t.Fatalf("channels: %v: %s", err, b)
	}
	return out.Channels
}

// offset is a channel's last offset (0 when it is unknown).
func (n *node) offset(channel string) uint64 {
	n.t.Helper()
	for _, c := range n.channels("") {
		if c.Name == channel {
			return c.Offset
		}
	}
	return 0
}

// ---- well-behaved clients (gorilla) ----

// msg is a server → client message.
type msg = testutil.Msg

// client is a reading client with JSON helpers.
type client struct {
	t *testing.T
	*websocket.Conn
}

// dialWS upgrades to ws://addr/ws?query through d (nil: a default dialer).
func dialWS(t *testing.T, d *websocket.Dialer, scheme, addr, query string) (*client, *http.Response, error) {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	c, resp, err := d.Dial(scheme+"://"+addr+"/ws?"+query, nil)
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(32 << 20)
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}, resp, nil
}

func (n *node) mustDial(query string) *client {
	n.t.Helper()
	c, resp, err := dialWS(n.t, nil, "ws", n.WS, query)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		n.t.Fatalf("dial ?%s: %v (HTTP %d)", query, err, st)
	}
	return c
}

func (c *client) next(d time.Duration) (msg, error) {
	c.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.ReadMessage()
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return msg{}, fmt.Errorf("not JSON: %.100q", b)
	}
	return m, nil
}

// expectOp reads until a message with op arrives (skipping deliveries).
func (c *client) expectOp(op string) msg {
	c.t.Helper()
	for {
		m, err := c.next(10 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for op %q: %v", op, err)
		}
		if m.Op == op {
			return m
		}
		if m.Op != "" {
			c.t.Fatalf("got %+v while waiting for op %q", m, op)
		}
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.WriteJSON(v); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// watcher is a well-behaved subscriber counting the messages of one
// channel in a goroutine.
type watcher struct {
	c    *client
	done chan struct{}
	mu   sync.Mutex
	got  []uint64
	err  error
}

// watch subscribes a reading client to channel (on the node's plain
// listener, anonymously when anon) and counts deliveries.
func (n *node) watch(channel, query string) *watcher {
	n.t.Helper()
	c := n.mustDial("channel=" + url.QueryEscape(channel) + query)
	c.expectOp("subscribed")
	w := &watcher{c: c, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			c.SetReadDeadline(time.Time{})
			_, b, err := c.ReadMessage()
			if err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
			var m msg
			if json.Unmarshal(b, &m) == nil && m.Op == "" && m.Channel == channel {
				w.mu.Lock()
				w.got = append(w.got, m.Offset)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// expect waits until the watcher holds want messages with offsets 1..want
// in order, failing if its connection ends first.
func (w *watcher) expect(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.mu.Lock()
		got, err := append([]uint64(nil), w.got...), w.err
		w.mu.Unlock()
		for i, o := range got {
			if o != uint64(i+1) {
				t.Fatalf("well-behaved client: message %d has offset %d (got %v)", i+1, o, got)
			}
		}
		if len(got) >= want {
			if len(got) > want {
				t.Fatalf("well-behaved client got %d messages, want %d", len(got), want)
			}
			return
		}
		if err != nil {
			t.Fatalf("well-behaved client lost its connection after %d of %d messages: %v", len(got), want, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("well-behaved client got %d of %d messages", len(got), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---- raw clients ----

// dialOpts shape a raw connection.
type dialOpts struct {
	// Local is the source address (e.g. 127.0.0.2); empty: any.
	Local string
	// RcvBuf sets SO_RCVBUF before connecting (0: kernel default), so a
	// client that does not read stops the server quickly.
	RcvBuf int
	// TLS wraps the connection (the handshake runs on the first I/O).
	TLS *tls.Config
}

// tcpDial connects to addr without sending anything.
func tcpDial(t *testing.T, addr string, o dialOpts) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if o.Local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(o.Local)}
	}
	if o.RcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, o.RcvBuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { nc.Close() })
	if o.TLS != nil {
		nc = tls.Client(nc, o.TLS)
	}
	return nc, nil
}

// upgrade sends an upgrade request for path on nc and reads the answer.
func upgrade(nc net.Conn, host, path, extensions string) (*http.Response, *bufio.Reader, error) {
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write([]byte(req + "\r\n")); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 1<<16)
	resp, err := http.ReadResponse(br, nil)
	return resp, br, err
}

// rawDial upgrades a raw connection (wstest frames) to addr+path.
func rawDial(t *testing.T, addr, path string, o dialOpts, extensions string) *wstest.Conn {
	t.Helper()
	nc, err := tcpDial(t, addr, o)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	resp, br, err := upgrade(nc, addr, path, extensions)
	if err != nil {
		t.Fatalf("upgrade %s%s: %v", addr, path, err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade %s%s: HTTP %d", addr, path, resp.StatusCode)
	}
	return &wstest.Conn{T: t, NC: nc, BR: br, Extensions: resp.Header.Get("Sec-WebSocket-Extensions")}
}

// closeFrame reads frames until a close frame, EOF or d passes; it returns
// the close code (1006: the connection ended without one; 0: still open)
// and reason, and how many frames of each opcode came before.
func closeFrame(c *wstest.Conn, d time.Duration) (code int, reason string, seen map[byte]int) {
	seen = map[byte]int{}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return 0, "not closed", seen
		}
		f, err := c.Read(left)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return 0, "not closed", seen
			}
			return 1006, err.Error(), seen
		}
		if f.Op == wstest.OpClose {
			if len(f.Payload) < 2 {
				return 1005, "", seen
			}
			return int(binary.BigEndian.Uint16(f.Payload)), string(f.Payload[2:]), seen
		}
		seen[f.Op]++
	}
}

// text is a masked final text frame.
func text(s string) wstest.Frame {
	return wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(s)}
}
