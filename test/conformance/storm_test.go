package conformance

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"
)

// TestBadInputStorm throws hostile input at the server from many
// connections at once (garbage, truncated frames, a declared 2^63-byte
// frame, unmasked frames, handshakes dribbled one byte at a time) and then
// checks that a fresh client is still served and that the server's memory
// stayed bounded.
func TestBadInputStorm(t *testing.T) {
	srv := startEcho(t)
	before, err := srv.RSS()
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	upgradeReq := []byte(upgrade("GET", "13"))
	attacks := map[string]func(c net.Conn){
		"garbage": func(c net.Conn) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			c.Write(b)
		},
		"garbage-after-upgrade": func(c net.Conn) {
			c.Write(upgradeReq)
			b := make([]byte, 64<<10)
			rand.Read(b)
			c.Write(b)
		},
		"truncated-frame": func(c net.Conn) {
			c.Write(upgradeReq)
			f := encode(frame{Fin: true, Op: opBinary, Payload: make([]byte, 60000)})
			c.Write(f[:len(f)/2])
		},
		"length-2^63": func(c net.Conn) {
			c.Write(upgradeReq)
			h := []byte{0x82, 0xFF}
			h = binary.BigEndian.AppendUint64(h, 1<<63)
			c.Write(append(h, 1, 2, 3, 4))
		},
		"length-2^62": func(c net.Conn) {
			c.Write(upgradeReq)
			h := []byte{0x82, 0xFF}
			h = binary.BigEndian.AppendUint64(h, 1<<62)
			c.Write(append(h, 1, 2, 3, 4))
		},
		"unmasked": func(c net.Conn) {
			c.Write(upgradeReq)
			c.Write(encode(frame{Fin: true, Op: opText, Payload: []byte("hello"), NoMask: true}))
		},
		"slow-handshake": func(c net.Conn) {
			for i := 0; i < 40 && i < len(upgradeReq); i++ {
				if _, err := c.Write(upgradeReq[i : i+1]); err != nil {
					return
				}
				time.Sleep(30 * time.Millisecond)
			}
		},
		"endless-header": func(c net.Conn) {
			c.Write([]byte("GET / HTTP/1.1\r\n"))
			line := []byte("X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
			for i := 0; i < 2000; i++ {
				if _, err := c.Write(line); err != nil {
					return
				}
			}
		},
		"endless-fragments": func(c net.Conn) {
			c.Write(upgradeReq)
			c.Write(encode(frame{Op: opBinary, Payload: make([]byte, 1000)}))
			part := encode(frame{Op: opCont, Payload: make([]byte, 64<<10)})
			for i := 0; i < 100; i++ {
				if _, err := c.Write(part); err != nil {
					return
				}
			}
		},
	}
	var wg sync.WaitGroup
	for round := 0; round < 5; round++ {
		for name, attack := range attacks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.DialTimeout("tcp", srv.Addr, 5*time.Second)
				if err != nil {
					t.Errorf("%s: dial: %v", name, err)
					return
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				attack(c)
				// Drain until the server closes or the deadline passes.
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	cl := dial(t, srv.Addr)
	cl.send(frame{Fin: true, Op: opText, Payload: []byte("after the storm")})
	cl.expect(opText, []byte("after the storm"))
	cl.closeCleanly()
	after, err := srv.RSS()
	if err != nil {
		t.Fatalf("rss: %v", err)
	}
	t.Logf("server RSS before %d KiB, after %d KiB", before>>10, after>>10)
	// 45 hostile connections each tried to make the server hold up to
	// 2^63 bytes; bounded means tens of MiB at most.
	if after-before > 128<<20 {
		t.Fatalf("server RSS grew by %d MiB during the storm", (after-before)>>20)
	}
}
