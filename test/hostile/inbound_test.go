package hostile

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// TestManySubscriptions: one connection could hold 100k subscriptions,
// stalling every client on its loop (linear scans). Past
// max_subscriptions (128) a sub is answered with an error code "limit" and
// the connection stays (or, sent this fast, is closed 1008 for too many
// commands); a reader on the same loop gets every message.
func TestManySubscriptions(t *testing.T) {
	t.Parallel()
	const maxSubs = 128
	n := start(t, "--allow-anonymous", "--loops=1")
	w := n.watch("news", "")
	// In the URL: 200 channels at once (no commands involved).
	var q strings.Builder
	for i := range 200 {
		fmt.Fprintf(&q, "channel=u%d&", i)
	}
	c := n.mustDial(q.String())
	var subscribed, limited int
	for subscribed+limited < 200 {
		m, err := c.next(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d subscribed and %d refused: %v", subscribed, limited, err)
		}
		switch {
		case m.Op == "subscribed":
			subscribed++
		case m.Op == "error" && m.Code == "limit":
			limited++
		case m.Op == "error":
			t.Fatalf("subscription refused with %q, want limit", m.Code)
		}
	}
	if subscribed != maxSubs || limited != 200-maxSubs {
		t.Errorf("200 channels in the URL: %d subscribed, %d refused with limit; want %d and %d", subscribed, limited, maxSubs, 200-maxSubs)
	}
	c.send(map[string]any{"op": "ping"})
	if m := c.expectOp("pong"); m.Op != "pong" {
		t.Fatal("connection gone after the limit")
	}

	// By commands: 100k subs from one connection, read concurrently.
	a := rawDial(t, n.WS, "/ws", dialOpts{}, "")
	var ok, refused atomic.Int64
	closed := make(chan int, 1)
	go func() {
		for {
			f, err := a.Read(30 * time.Second)
			if err != nil {
				closed <- 1006
				return
			}
			if f.Op == wstest.OpClose {
				code := 1005
				if len(f.Payload) >= 2 {
					code = int(f.Payload[0])<<8 | int(f.Payload[1])
				}
				closed <- code
				return
			}
			var m msg
			json.Unmarshal(f.Payload, &m)
			switch {
			case m.Op == "subscribed":
				if ok.Add(1) > maxSubs {
					closed <- -1
					return
				}
			case m.Op == "error" && m.Code == "limit":
				refused.Add(1)
			}
		}
	}()
	const total = 100_000
	var buf []byte
	for i := 0; i < total; i++ {
		buf = append(buf, wstest.Encode(text(fmt.Sprintf(`{"op":"sub","channel":"a%d"}`, i)))...)
		if len(buf) > 64<<10 || i == total-1 {
			a.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := a.NC.Write(buf); err != nil {
				break
			}
			buf = buf[:0]
		}
		if len(closed) > 0 {
			break
		}
	}
	for k := range 20 {
		n.mustPublish("news", fmt.Sprint("message ", k))
	}
	w.expect(t, 20)
	select {
	case code := <-closed:
		if code == -1 {
			t.Fatalf("one connection got more than %d subscriptions", maxSubs)
		}
		if code != 1008 {
			t.Errorf("subscription flooder closed %d, want 1008 (too many commands) or to stay open", code)
		}
	default:
		// Still open: it must have been refused past the limit.
		if refused.Load() == 0 {
			t.Errorf("no limit error among the flood's replies")
		}
	}
	if got := ok.Load(); got > maxSubs {
		t.Errorf("%d subscriptions from one connection, want at most %d", got, maxSubs)
	}
	if s := n.metric("herald_subscriptions"); s > 2*maxSubs+8 {
		t.Errorf("herald_subscriptions = %v, want at most %d", s, 2*maxSubs+8)
	}
	n.expectMetric(refusals("subscriptions"), 200-maxSubs)
}

// deflateBomb is a permessage-deflate message body (RFC 7692: the final
// 00 00 ff ff removed) of size zero bytes.
func deflateBomb(t *testing.T, size int) []byte {
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(make([]byte, size))
	fw.Flush()
	out := b.Bytes()
	return out[:len(out)-4]
}

// TestCompressionAmplification: a 4 KiB compressed message inflating to
// 4 MiB cost ~33 ms of loop time, and ten such clients saturated both
// cores. The inflate cap is max_message_size (64 KiB in push mode): each
// attacker is closed 1009 and a reader on the same loop gets every
// message.
func TestCompressionAmplification(t *testing.T) {
	t.Parallel()
	n := start(t, "--allow-anonymous", "--loops=1")
	w := n.watch("news", "")
	bomb := deflateBomb(t, 4<<20)
	if len(bomb) > 8<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	const attackers, rounds = 10, 3
	var wg sync.WaitGroup
	codes := make(chan int, attackers*rounds)
	for range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				c := rawDial(t, n.WS, "/ws", dialOpts{}, "permessage-deflate; client_no_context_takeover; server_no_context_takeover")
				if !strings.HasPrefix(c.Extensions, "permessage-deflate") {
					t.Errorf("deflate not negotiated: %q", c.Extensions)
					return
				}
				c.Send(wstest.Frame{Fin: true, RSV: wstest.RSV1, Op: wstest.OpText, Payload: bomb})
				code, _, _ := closeFrame(c, 10*time.Second)
				codes <- code
				c.NC.Close()
				if code == 0 {
					return // not closed: no point in waiting again
				}
			}
		}()
	}
	for k := range 30 {
		n.mustPublish("news", fmt.Sprint("message ", k))
	}
	wg.Wait()
	close(codes)
	bad := map[int]int{}
	for code := range codes {
		if code != 1009 {
			bad[code]++
		}
	}
	if len(bad) > 0 {
		t.Errorf("compression bombs: closes other than 1009: %v (0 = still open)", bad)
	}
	w.expect(t, 30)
	rss := n.peakRSS()
	t.Logf("compression amplification: peak RSS %d MiB", rss>>20)
	if rss > 100<<20 {
		t.Errorf("peak RSS %d MiB", rss>>20)
	}
	n.expectMetric("herald_inflate_errors_total", attackers*rounds)
}

// TestUnfinishedMessages: ~4 MiB of unfinished inbound message per
// connection with no aggregate cap (150 connections: 778 MiB). A message
// is capped at max_message_size (1009), the node's incomplete data at
// max_inbound_buffered (1013 "server busy"), and a message may not stay
// unfinished past message_timeout (1008).
func TestUnfinishedMessages(t *testing.T) {
	t.Parallel()
	t.Run("per-connection", func(t *testing.T) {
		t.Parallel()
		const conns = 40
		n := start(t, "--allow-anonymous")
		chunk := bytes.Repeat([]byte("z"), 64<<10)
		var wg sync.WaitGroup
		codes := make([]int, conns)
		for i := range conns {
			c := rawDial(t, n.WS, "/ws", dialOpts{}, "")
			wg.Add(1)
			go func() {
				defer wg.Done()
				// ~4 MiB (just under the old 4 MiB cap) of a message in
				// 64 KiB fragments that never ends.
				for k := range 63 {
					op := byte(wstest.OpCont)
					if k == 0 {
						op = wstest.OpText
					}
					c.NC.SetWriteDeadline(time.Now().Add(5 * time.Second))
					if _, err := c.NC.Write(wstest.Encode(wstest.Frame{Op: op, Payload: chunk})); err != nil {
						break
					}
				}
				codes[i], _, _ = closeFrame(c, 10*time.Second)
			}()
		}
		wg.Wait()
		for i, code := range codes {
			if code != 1009 {
				t.Errorf("conn %d: 4 MiB unfinished message: close %d, want 1009 (0 = still open)", i, code)
			}
		}
		rss := n.peakRSS()
		t.Logf("%d connections holding unfinished messages: peak RSS %d MiB", conns, rss>>20)
		if rss > 78<<20 {
			t.Errorf("peak RSS %d MiB with %d connections holding unfinished messages, want under 78 MiB", rss>>20, conns)
		}
	})
	t.Run("node-wide", func(t *testing.T) {
		t.Parallel()
		const conns = 100
		n := start(t, "--allow-anonymous", "--max-inbound-buffered=4194304")
		half := bytes.Repeat([]byte("z"), 30<<10)
		var cs []*wstest.Conn
		for i := range conns {
			c := rawDial(t, n.WS, "/ws", dialOpts{}, "")
			if i%2 == 0 {
				// Reassembly: two 30 KiB fragments of a message that never ends.
				c.Send(wstest.Frame{Op: wstest.OpText, Payload: half}, wstest.Frame{Op: wstest.OpCont, Payload: half})
			} else {
				// A partial frame: header announces 60 KiB, 30 KiB sent.
				f := wstest.Encode(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: append(half, half...)})
				c.WriteRaw(f[:len(f)-30<<10])
			}
			cs = append(cs, c)
		}
		// 100 × 60 KiB = 6 MiB is over the 4 MiB cap: some are closed 1013.
		n.waitMetric(disconnects("inbound_memory"), 1)
		if g := n.metric("herald_inbound_buffered_bytes"); g > 4<<20 {
			t.Errorf("herald_inbound_buffered_bytes = %v, over max_inbound_buffered", g)
		}
		busy := 0
		for _, c := range cs {
			if code, _, _ := closeFrame(c, 50*time.Millisecond); code == 1013 {
				busy++
			}
		}
		if busy == 0 {
			t.Errorf("no connection was closed 1013 though the node held more than max_inbound_buffered")
		}
		// A legitimate client still works.
		g := n.mustDial("")
		g.send(map[string]any{"op": "ping"})
		g.expectOp("pong")
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		n := start(t, "--allow-anonymous", "--message-timeout=1s")
		c := rawDial(t, n.WS, "/ws", dialOpts{}, "")
		c.Send(wstest.Frame{Op: wstest.OpText, Payload: []byte(`{"op":`)})
		code, reason, _ := closeFrame(c, 15*time.Second)
		if code != 1008 || !strings.Contains(reason, "timeout") {
			t.Errorf("unfinished message: close %d %q, want 1008 message timeout", code, reason)
		}
		n.expectMetric(disconnects("message_timeout"), 1)
	})
}

// TestCommandFlood: commands were unlimited. Past command_rate (50/s,
// burst 100) a connection is closed 1008 "too many commands"; a reader on
// the same loop gets every message.
func TestCommandFlood(t *testing.T) {
	t.Parallel()
	n := start(t, "--allow-anonymous", "--loops=1")
	w := n.watch("news", "")
	c := rawDial(t, n.WS, "/ws", dialOpts{}, "")
	const total = 20_000
	ping := wstest.Encode(text(`{"op":"ping"}`))
	var pongs atomic.Int64
	result := make(chan [2]any, 1)
	go func() {
		for {
			f, err := c.Read(20 * time.Second)
			if err != nil {
				result <- [2]any{1006, err.Error()}
				return
			}
			if f.Op == wstest.OpClose && len(f.Payload) >= 2 {
				result <- [2]any{int(f.Payload[0])<<8 | int(f.Payload[1]), string(f.Payload[2:])}
				return
			}
			if bytes.Contains(f.Payload, []byte(`"pong"`)) && pongs.Add(1) == total {
				result <- [2]any{0, "all commands answered"}
				return
			}
		}
	}()
	batch := bytes.Repeat(ping, 500)
	for sent := 0; sent < total; sent += 500 {
		c.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.NC.Write(batch); err != nil {
			break
		}
	}
	for k := range 20 {
		n.mustPublish("news", fmt.Sprint("message ", k))
	}
	w.expect(t, 20)
	r := <-result
	if r[0].(int) != 1008 || !strings.Contains(r[1].(string), "too many commands") {
		t.Errorf("command flood: close %v %q after %d pongs, want 1008 too many commands", r[0], r[1], pongs.Load())
	}
	if p := pongs.Load(); p >= total {
		t.Errorf("all %d commands answered", p)
	}
	n.expectMetric(disconnects("command_rate"), 1)
}
