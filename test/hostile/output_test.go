package hostile

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/wstest"
)

// TestPingFloodOutputBudget: pongs, replies and Session.Send were queued
// without the write-buffer limit, so 60 clients sending pings without
// reading took the server from 16 MiB to 1.19 GiB. Every byte queued for a
// connection now counts against write_buffer_limit (1 MiB): a flooder is
// closed 1008 "output budget exceeded", memory stays bounded and a reader
// on the same loop gets every message.
func TestPingFloodOutputBudget(t *testing.T) {
	t.Parallel()
	const flooders = 20
	// The flooders read only once their writes stall (the server stopped
	// reading them); a long linger keeps each close frame waiting for
	// them however slowly a busy machine runs the test.
	n := start(t, "--allow-anonymous", "--loops=1", "--socket-send-buffer=32768", "--close-linger=60s")
	w := n.watch("news", "")
	base := n.rss()
	// Per flooder, up to 10 MiB of pings: 10 times the budget, plus what
	// the kernel buffers on both sides.
	ping := wstest.Encode(wstest.Frame{Fin: true, Op: wstest.OpPing, Payload: []byte(strings.Repeat("p", 125))})
	batch := []byte(strings.Repeat(string(ping), 512))
	const batches = (10 << 20) / (125 * 512)
	var wg sync.WaitGroup
	codes := make([]int, flooders)
	reasons := make([]string, flooders)
	for i := range flooders {
		c := rawDial(t, n.WS, "/ws", dialOpts{RcvBuf: 4096}, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range batches {
				c.NC.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.NC.Write(batch); err != nil {
					break // the server stopped reading or closed: enough
				}
			}
			codes[i], reasons[i], _ = closeFrame(c, 10*time.Second)
		}()
	}
	for k := range 20 {
		n.mustPublish("news", fmt.Sprint("message ", k))
	}
	wg.Wait()
	for i := range flooders {
		if codes[i] != 1008 {
			t.Errorf("ping flooder %d: close %d %q, want 1008 (output budget exceeded)", i, codes[i], reasons[i])
		}
	}
	w.expect(t, 20)
	// 60 flooders took 1.19 GiB (20 MiB each): allow a tenth of that per
	// flooder, over the idle node.
	rss, bound := n.peakRSS(), base+flooders*2<<20+16<<20
	t.Logf("%d ping flooders: peak RSS %d MiB (idle %d MiB)", flooders, rss>>20, base>>20)
	if rss > bound {
		t.Errorf("peak RSS %d MiB with %d ping flooders, want under %d MiB", rss>>20, flooders, bound>>20)
	}
	n.expectMetric(disconnects("output_budget"), flooders)
}

// TestSlowConsumerCloseFrame: a slow consumer was closed with no room left
// for the close frame, so it saw 1006. Room is reserved and the socket
// lingers until the kernel took the close frame: when the client finally
// reads, it gets every queued message and then 1013 (policy close) or 1008
// (policy close-policy).
func TestSlowConsumerCloseFrame(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		policy string
		code   int
	}{{"close", 1013}, {"close-policy", 1008}} {
		t.Run(c.policy, func(t *testing.T) {
			t.Parallel()
			n := start(t, "--allow-anonymous", "--slow-policy="+c.policy, "--socket-send-buffer=32768")
			slow := rawDial(t, n.WS, "/ws?channel=firehose", dialOpts{RcvBuf: 4096}, "")
			w := n.watch("firehose", "")
			payload := strings.Repeat("x", 60<<10)
			sent := 0
			for n.metric(disconnects("slow_consumer")) == 0 {
				if sent == 200 { // 12 MiB: far past a 1 MiB budget
					t.Fatalf("the slow consumer was not closed after %d messages of 60 KiB", sent)
				}
				n.mustPublish("firehose", payload)
				sent++
			}
			code, reason, seen := closeFrame(slow, 15*time.Second)
			if code != c.code {
				t.Errorf("slow consumer: close %d %q after %d frames, want %d", code, reason, seen[wstest.OpText], c.code)
			}
			w.expect(t, sent)
		})
	}
}

// TestOversizedPublish: a default-size (1 MiB) API publish returned 200,
// its frame was a few bytes over --write-buffer-limit, every subscriber was
// closed 1013 and each reconnect with since recovered it and was closed
// again: a livelock that lost the message. A publish is either refused
// with 413 or delivered; a recovery never ends in 1013. Settings that
// contradict each other are refused at start.
func TestOversizedPublish(t *testing.T) {
	t.Parallel()
	t.Run("refused-or-delivered", func(t *testing.T) {
		n := start(t, "--allow-anonymous")
		sub := n.mustDial("channel=big")
		first := sub.expectOp("subscribed")
		for _, size := range []int{1<<20 - 1024, 256 << 10, 1 << 20} {
			st, body := n.publish("big", strings.Repeat("b", size))
			switch st {
			case 413:
				if !strings.Contains(body, "too_large") {
					t.Errorf("publish of %d bytes: 413 %s, want code too_large", size, body)
				}
				continue
			case 200:
			default:
				t.Errorf("publish of %d bytes: %d %s, want 200 or 413", size, st, body)
				continue
			}
			// Accepted: every subscriber must get it, directly or through
			// a recovery that does not end in 1013 again.
			epoch := first.Epoch
			for attempt := 0; ; attempt++ {
				m, err := sub.next(10 * time.Second)
				if err == nil && m.Op == "" && len(m.Data) >= size {
					break
				}
				if err == nil {
					continue
				}
				code := 0
				if ce, ok := err.(*websocket.CloseError); ok {
					code = ce.Code
				}
				if attempt == 2 {
					t.Fatalf("publish of %d bytes accepted with 200 but never delivered: the subscriber was closed %d three times (livelock)", size, code)
				}
				since := fmt.Sprintf("big:%d:%s", n.offset("big")-1, epoch)
				sub = n.mustDial("channel=big&since=" + since)
				m = sub.expectOp("subscribed")
				epoch = m.Epoch
			}
		}
		// A message at the default max_publish_size is delivered.
		n.mustPublish("big", "after")
		for {
			m, err := sub.next(10 * time.Second)
			if err != nil {
				t.Fatalf("subscriber after the large publishes: %v", err)
			}
			if m.Op == "" && string(m.Data) == `"after"` {
				break
			}
		}
		n.expectMetric(refusals("publish_size"), 1)
	})
	t.Run("contradicting-settings-refused", func(t *testing.T) {
		out := mustExit(t, nil, "serve", "--listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", "--jwt-secret", secret,
			"--max-publish-size=2097152", "--write-buffer-limit=1048576")
		low := strings.ReplaceAll(strings.ToLower(out), "-", "_")
		if !strings.Contains(low, "max_publish_size") || !strings.Contains(low, "write_buffer_limit") {
			t.Fatalf("refusal does not name max_publish_size and write_buffer_limit:\n%s", out)
		}
	})
}

// TestTimersInOneTick: the loop's scratch arena was reset at the top of
// every timer callback while one tick ran every due timer before the
// writes were flushed, so the frames of connections whose timers fired
// together overwrote each other (30 of 40 got a 1001 close with a ping's
// header). Two groups of 20 silent connections on one loop are phased so
// that one group's close (1001 ping timeout, or 4001 token expiry) falls
// in the same tick as the other group's ping: every frame must be
// well-formed.
func TestTimersInOneTick(t *testing.T) {
	t.Parallel()
	const group = 20
	// frameOK checks one frame from the server: a ping, or the close with
	// code want. It reports whether the frame was the close.
	frameOK := func(t *testing.T, i int, f wstest.Frame, want int) bool {
		switch f.Op {
		case wstest.OpPing:
			if !f.Fin || f.RSV != 0 || len(f.Payload) > 125 {
				t.Errorf("conn %d: malformed ping: fin %v rsv %d % x", i, f.Fin, f.RSV, f.Payload)
			}
			return false
		case wstest.OpClose:
			if !f.Fin || f.RSV != 0 || len(f.Payload) < 2 || len(f.Payload) > 125 {
				t.Errorf("conn %d: malformed close frame % x", i, f.Payload)
				return true
			}
			code := int(binary.BigEndian.Uint16(f.Payload))
			if code != want || !utf8.Valid(f.Payload[2:]) {
				t.Errorf("conn %d: close %d %q, want %d", i, code, f.Payload[2:], want)
			}
			return true
		}
		t.Errorf("conn %d: unexpected frame op %#x (% x)", i, f.Op, f.Payload[:min(len(f.Payload), 16)])
		return true
	}
	// firstPing waits for each connection's first frame: a well-formed ping.
	firstPing := func(t *testing.T, cs []*wstest.Conn) {
		for i, c := range cs {
			f, err := c.Read(15 * time.Second)
			if err != nil {
				t.Fatalf("conn %d: %v before the first ping", i, err)
			}
			if f.Op != wstest.OpPing {
				frameOK(t, i, f, 0)
				t.Fatalf("conn %d: first frame op %#x, want a ping", i, f.Op)
			}
			frameOK(t, i, f, 0)
		}
	}
	// untilClose reads each connection until its close frame.
	untilClose := func(t *testing.T, cs []*wstest.Conn, want int) {
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					f, err := c.Read(20 * time.Second)
					if err != nil {
						t.Errorf("conn %d: %v before a close frame", i, err)
						return
					}
					if frameOK(t, i, f, want) {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	// dialGroup takes its subtest's t: a failure reported on the parent's
	// from a subtest's goroutine aborts the whole binary, leaving its
	// nodes running.
	dialGroup := func(t *testing.T, n *node, path string) []*wstest.Conn {
		var cs []*wstest.Conn
		for range group {
			cs = append(cs, rawDial(t, n.WS, path, dialOpts{}, ""))
		}
		return cs
	}
	t.Run("ping-timeout", func(t *testing.T) {
		t.Parallel()
		n := start(t, "--allow-anonymous", "--loops=1", "--ping-interval=1s", "--pong-timeout=1s")
		// Group a is pinged at +1 s and closed at +2 s; group b, dialed
		// when a's pings arrive, is pinged in the tick a is closed.
		a := dialGroup(t, n, "/ws")
		firstPing(t, a)
		b := dialGroup(t, n, "/ws")
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); untilClose(t, a, 1001) }()
		firstPing(t, b)
		wg.Wait()
		untilClose(t, b, 1001)
	})
	t.Run("token-expiry", func(t *testing.T) {
		t.Parallel()
		n := start(t, "--allow-anonymous", "--loops=1", "--jwt-leeway=0s", "--ping-interval=1s", "--pong-timeout=10s")
		// At least 4 s for group a's upgrades, whole seconds as a token
		// has them: a loaded machine (make test with the other suites
		// beside it) has taken over 2 s for the 20.
		exp := time.Now().Add(5 * time.Second).Truncate(time.Second)
		tok := token(t, auth.TokenSpec{Subject: "t", ExpiresAt: exp})
		// Group a's tokens expire together at exp; group b (anonymous)
		// is dialed one ping interval before, so its pings fall in the
		// tick group a is closed 4001. This wait aligns the groups; no
		// assertion depends on it.
		a := dialGroup(t, n, "/ws?token="+tok)
		firstPing(t, a)
		time.Sleep(time.Until(exp.Add(-time.Second)))
		b := dialGroup(t, n, "/ws")
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); untilClose(t, a, 4001) }()
		firstPing(t, b)
		wg.Wait()
	})
}
