package hostile

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// paddingRecord seals a record of inner type application data that carries
// no data, only pad bytes of zero padding (RFC 8446 5.4).
func (w *recordWriter) paddingRecord(pad int) []byte {
	nonce := append([]byte(nil), w.iv...)
	for i := range 8 {
		nonce[4+i] ^= byte(w.seq >> (56 - 8*i))
	}
	w.seq++
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(1+pad+16))
	return w.aead.Seal(hdr, nonce, append([]byte{23}, make([]byte, pad)...), hdr)
}

// closeOverTLS waits, up to within, for the server's close frame and then
// the end of the connection; it returns the close code and reason, how
// long the close took and the error the connection ended with (io.EOF
// after close_notify).
func (r *rawTLS) closeOverTLS(t *testing.T, within time.Duration) (code uint16, reason string, took time.Duration, end error) {
	t.Helper()
	start := time.Now()
	_ = r.tc.SetReadDeadline(start.Add(within))
	var hdr [2]byte
	if _, err := io.ReadFull(r.tc, hdr[:]); err != nil {
		t.Fatalf("no close frame within %v: %v", within, err)
	}
	took = time.Since(start)
	if hdr[0] != 0x88 || hdr[1] < 2 || hdr[1] > 125 {
		t.Fatalf("frame header % x, want a close frame", hdr)
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(r.tc, body); err != nil {
		t.Fatalf("close frame: %v", err)
	}
	_, end = io.Copy(io.Discard, r.tc)
	if end == nil {
		end = io.EOF
	}
	return binary.BigEndian.Uint16(body), string(body[2:]), took, end
}

// TestTLSPartialRecordTimeout: on the loop engine, --message-timeout covers
// an unfinished TLS record as it does an unfinished WebSocket message: a
// connection that stalls inside a full-size record, and one that keeps
// finishing and starting records that carry only padding, are each closed
// 1008 "message timeout" (then close_notify) within the timeout, counted in
// herald_disconnects_total{reason="message_timeout"}; a well-behaved wss
// client keeps echoing all along.
func TestTLSPartialRecordTimeout(t *testing.T) {
	t.Parallel()
	const timeout = time.Second
	n := startTLS(t, "--allow-anonymous", "--message-timeout=1s", "--ping-interval=60s")
	good, _, err := dialWS(t, &websocket.Dialer{TLSClientConfig: n.tlsConfig(), HandshakeTimeout: 10 * time.Second}, "wss", n.TLS, "")
	if err != nil {
		t.Fatal(err)
	}
	ping := func(when string) {
		t.Helper()
		good.send(map[string]any{"op": "ping"})
		if m, err := good.next(10 * time.Second); err != nil || m.Op != "pong" {
			t.Fatalf("good wss client %s: %+v, %v", when, m, err)
		}
	}
	ping("at start")
	base := n.metric(disconnects("message_timeout"))
	check := func(name string, r *rawTLS) {
		t.Helper()
		code, reason, took, end := r.closeOverTLS(t, 10*time.Second)
		if code != 1008 || reason != "message timeout" {
			t.Errorf("%s: close %d %q, want 1008 \"message timeout\"", name, code, reason)
		}
		if !errors.Is(end, io.EOF) {
			t.Errorf("%s: after the close frame the connection ended with %v, want close_notify", name, end)
		}
		if took > timeout+2*time.Second {
			t.Errorf("%s: closed after %v, want within the %v message timeout", name, took, timeout)
		}
		t.Logf("%s: closed after %v", name, took)
	}

	// A 16,405-byte record less its last 10 bytes, then silence.
	stall := dialRawTLS(t, n)
	rec := stall.w.record(23, make([]byte, 1<<14-1))
	if len(rec) != 16405 {
		t.Fatalf("record of %d bytes", len(rec))
	}
	stall.write(t, rec[:len(rec)-10])
	ping("with a record held")
	check("partial record", stall)
	n.waitMetric(disconnects("message_timeout"), base+1)
	ping("after the partial record")

	// Records that carry only padding, each finished as the next begins,
	// every 100 ms: the clock started by the first is never stopped.
	trickle := dialRawTLS(t, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cur := trickle.w.paddingRecord(200)
		if _, err := trickle.tcp.Write(cur[:len(cur)-5]); err != nil {
			return
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			next := trickle.w.paddingRecord(200)
			b := append(cur[len(cur)-5:], next[:len(next)-5]...)
			if _, err := trickle.tcp.Write(b); err != nil {
				return
			}
			cur = next
		}
	}()
	check("padding-only records", trickle)
	close(stop)
	wg.Wait()
	n.waitMetric(disconnects("message_timeout"), base+2)
	ping("at the end")
}
