package tlsbridge

import (
	"bytes"
	"encoding/hex"
	"net"
	"sync"
)

// exactConn is the TCP connection of a handshake whose record layer moves
// to an event loop afterwards (Config.Direct). While exact is set its Read
// returns bytes up to the end of the current TLS record and no further:
// crypto/tls reads ahead whatever the kernel has, and a TLS 1.3 client may
// send application data right behind its Finished, which must stay in the
// socket for the loop to read. Once the handshake is done, exact is
// cleared for connections that stay on the bridge.
type exactConn struct {
	net.Conn
	exact bool
	hdr   [5]byte
	hn    int // header bytes read of the current record
	left  int // body bytes of the current record still to read
	keys  keyLog
}

func (c *exactConn) Read(p []byte) (int, error) {
	if !c.exact {
		return c.Conn.Read(p)
	}
	if c.left == 0 {
		want := min(len(p), len(c.hdr)-c.hn)
		n, err := c.Conn.Read(p[:want])
		copy(c.hdr[c.hn:], p[:n])
		if c.hn += n; c.hn == len(c.hdr) {
			c.hn, c.left = 0, int(c.hdr[3])<<8|int(c.hdr[4])
		}
		return n, err
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// atBoundary reports whether every byte read so far belongs to complete
// records.
func (c *exactConn) atBoundary() bool { return c.hn == 0 && c.left == 0 }

// keyLog is one handshake's tls.Config.KeyLogWriter: it keeps the
// application traffic secrets (NSS key log lines, one per Write) and
// nothing else.
type keyLog struct {
	mu             sync.Mutex
	client, server []byte
}

func (k *keyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	var dst *[]byte
	switch string(f[0]) {
	case "CLIENT_TRAFFIC_SECRET_0":
		dst = &k.client
	case "SERVER_TRAFFIC_SECRET_0":
		dst = &k.server
	default:
		return len(line), nil
	}
	b := make([]byte, hex.DecodedLen(len(f[2])))
	if _, err := hex.Decode(b, f[2]); err != nil {
		return len(line), nil
	}
	k.mu.Lock()
	*dst = b
	k.mu.Unlock()
	return len(line), nil
}

func (k *keyLog) complete() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.client) > 0 && len(k.server) > 0
}
