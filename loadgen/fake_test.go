package loadgen

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestMain lets the test binary serve as a loadgen worker process, so the
// multi-process mode is tested by re-running it.
func TestMain(m *testing.M) {
	if os.Getenv(WorkerEnv) == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakePolicy is how the fake server mistreats published messages.
type fakePolicy struct {
	drop  uint64        // seq+1 of a message not delivered (0: none)
	dup   uint64        // seq+1 of a message delivered twice (0: none)
	delay time.Duration // added before every broadcast
	// registerLate adds a connection to the broadcast set that long
	// after its 101, as servers that register it afterwards do.
	registerLate time.Duration
}

// fakeServer is a small goroutine-per-connection WebSocket server: every
// connection is subscribed to everything, POST /publish broadcasts the
// body, and messages from clients are echoed.
type fakeServer struct {
	*httptest.Server
	policy fakePolicy

	mu    sync.Mutex
	conns map[*fakeConn]struct{}
	// tokens are the token parameters of the upgrade requests, in order.
	tokens []string
}

type fakeConn struct {
	mu sync.Mutex // serialises writes
	nc net.Conn
}

// fakeWriteTimeout is how long one write may wait for a client before the
// fake server cuts it off as a slow consumer. A client that stopped
// reading always reaches it; one that reads must not, however busy the
// machine: it is far longer than any stall of a reading client.
const fakeWriteTimeout = 5 * time.Second

// write sends p, and cuts off a client that has not taken it within
// fakeWriteTimeout (a slow consumer).
func (c *fakeConn) write(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(fakeWriteTimeout))
	if err := wsutil.WriteServerMessage(c.nc, ws.OpText, p); err != nil {
		_ = c.nc.Close()
	}
}

// Write sends the answers to control frames (pong, close), between whole
// messages.
func (c *fakeConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(fakeWriteTimeout))
	return c.nc.Write(p)
}

func newFakeServer(t *testing.T, policy fakePolicy) *fakeServer {
	t.Helper()
	s := &fakeServer{policy: policy, conns: map[*fakeConn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		// Registering under the lock taken for the upgrade means that a
		// publish that begins after the client has its 101 reaches it.
		s.mu.Lock()
		if tok := r.URL.Query().Get("token"); tok != "" {
			s.tokens = append(s.tokens, tok)
		}
		nc, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			s.mu.Unlock()
			return
		}
		c := &fakeConn{nc: nc}
		if s.policy.registerLate > 0 {
			s.mu.Unlock()
			time.Sleep(s.policy.registerLate)
			s.mu.Lock()
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			_ = nc.Close()
		}()
		// Reads go through rw.Reader, which may hold what the client sent
		// right after its handshake.
		control := wsutil.ControlFrameHandler(c, ws.StateServerSide)
		rd := &wsutil.Reader{Source: rw.Reader, State: ws.StateServerSide, OnIntermediate: control}
		for {
			h, err := rd.NextFrame()
			if err != nil {
				return
			}
			if h.OpCode.IsControl() {
				if err := control(h, rd); err != nil {
					return
				}
				continue
			}
			p, err := io.ReadAll(rd)
			if err != nil {
				return
			}
			if body, ok := bytes.CutPrefix(p, []byte("PUB ")); ok {
				s.broadcast(body)
				continue
			}
			c.write(p)
		}
	})
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.broadcast(body)
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// broadcast sends body to every connection, as the policy says.
func (s *fakeServer) broadcast(body []byte) {
	_, seq, _ := parseStamp(body)
	if s.policy.drop == seq+1 {
		return
	}
	time.Sleep(s.policy.delay)
	s.mu.Lock()
	conns := make([]*fakeConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// One writer per connection, so that the slow consumers' waits for
	// fakeWriteTimeout overlap instead of adding up; the publisher still
	// waits for every write (back-pressure, as from a real server).
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.write(body)
			if s.policy.dup == seq+1 {
				c.write(body)
			}
		})
	}
	wg.Wait()
}

func (s *fakeServer) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/ws" }

// baseConfig is a small, fast run against s.
func (s *fakeServer) baseConfig(scenario string) Config {
	return Config{
		URL: s.wsURL(), PubHTTP: s.URL + "/publish", Scenario: scenario,
		Conns: 20, Count: 5, Interval: 20 * time.Millisecond, Loops: 2,
		// A drain ends as soon as every delivery arrived; its long bound
		// is for a busy machine.
		Duration: 300 * time.Millisecond, Drain: 20 * time.Second, Deadline: time.Minute,
		ConnectRate: -1, Rate: 50, SourceAddrs: []string{"127.0.0.1"},
	}
}
