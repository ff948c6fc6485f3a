//go:build unix

package tlsbridge

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// resourceErrors are the accept errors of a process or kernel out of
// file descriptors or memory, worth a pause rather than the end of the
// listener.
var resourceErrors = []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM}

// outOfResources reports whether err is one of resourceErrors.
func outOfResources(err error) bool {
	for _, e := range resourceErrors {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// logLimit lets one line through per second and counts the others, so
// that a condition clients can cause at will (descriptors run out) cannot
// flood the log. Safe for concurrent use.
type logLimit struct {
	mu      sync.Mutex
	next    time.Time
	dropped uint64
}

// allow reports whether a line may be logged now, and how many were left
// out since the last one.
func (l *logLimit) allow() (bool, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Before(l.next) {
		l.dropped++
		return false, 0
	}
	l.next = now.Add(time.Second)
	n := l.dropped
	l.dropped = 0
	return true, n
}

// bufSize is the size of the pooled buffers that move bytes: a TLS record's
// largest plaintext, so one read drains one record.
const bufSize = 16 << 10

var bufs = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// bridged is one connection: the TLS side, the raw TCP connection under it
// and this side's end of the socket pair.
type bridged struct {
	tc           *tls.Conn
	raw          net.Conn
	plain        net.Conn
	writeTimeout time.Duration
	linger       time.Duration // see Config.CloseLinger; negative: none
	once         sync.Once
	loopGone     bool // the loop's end refused a write; touched by up only
}

// close closes both sides; safe to call more than once and concurrently.
func (c *bridged) close() {
	c.once.Do(func() {
		_ = c.plain.Close()
		// Close sends close_notify (bounded by a write deadline, since the
		// client may not be reading) and closes the TCP connection.
		_ = c.raw.SetWriteDeadline(time.Now().Add(time.Second))
		_ = c.tc.Close()
	})
}

// run moves bytes both ways until either side ends, then closes both.
// When the event loop ends the connection (its side reads EOF), the close
// lingers: see lingerClose.
func (c *bridged) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.up()
		c.close()
	}()
	if c.down() {
		c.lingerClose(done)
	}
	c.close()
	<-done
}

// lingerClose ends a connection the event loop closed the way the loop
// ends a plain one: close_notify, then the TCP write side shut, while up
// goes on reading what the client still sends (the loop discards it) until
// the client's EOF (done), the loop closing its end, or c.linger. Closing
// at once would reset a client still writing (one sending an oversized
// frame, say), and a reset can destroy the close frame before the client
// reads it.
func (c *bridged) lingerClose(done <-chan struct{}) {
	if c.linger < 0 {
		return
	}
	_ = c.raw.SetWriteDeadline(time.Now().Add(time.Second))
	if err := c.tc.CloseWrite(); err != nil {
		return
	}
	if cw, ok := c.raw.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	t := time.NewTimer(c.linger)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// up moves plaintext from the TLS client to the event loop. Between bursts
// it holds no buffer: it waits for the TCP socket to be readable, then
// reads what crypto/tls can decrypt with a pooled buffer, draining records
// already buffered inside crypto/tls with reads whose deadline has passed
// (crypto/tls treats a timeout as temporary, so the connection stays
// usable).
func (c *bridged) up() {
	rc, err := c.raw.(syscall.Conn).SyscallConn()
	if err != nil {
		return
	}
	// The client may have sent data right behind its last handshake
	// message (TLS 1.3 clients do), which crypto/tls may already hold:
	// drain first, then wait.
	deadline := past
	for {
		bp := bufs.Get().(*[]byte)
		err := c.drainTLS(*bp, deadline)
		bufs.Put(bp)
		if err != nil {
			return
		}
		if err := waitReadable(rc); err != nil {
			return
		}
		deadline = time.Now().Add(trickle)
	}
}

// past is a deadline that has passed.
var past = time.Unix(1, 0)

// trickle bounds the first read after the socket turned readable: a record
// that does not complete in that time is left inside crypto/tls (which
// keeps the bytes it read) and the buffer goes back to the pool, so a
// client trickling bytes cannot pin one.
const trickle = 200 * time.Millisecond

// drainTLS reads and forwards everything crypto/tls can return now: a first
// read under deadline, then reads with a deadline in the past until one
// times out. A timeout ends the drain, not the connection.
func (c *bridged) drainTLS(buf []byte, deadline time.Time) error {
	defer c.raw.SetReadDeadline(time.Time{})
	for {
		_ = c.raw.SetReadDeadline(deadline)
		n, err := c.tc.Read(buf)
		if n > 0 && !c.loopGone {
			if _, werr := c.plain.Write(buf[:n]); werr != nil {
				// The loop closed its end: what the client still sends
				// is read and dropped until the lingering close ends,
				// so that the loop's last bytes reach it (see
				// lingerClose).
				c.loopGone = true
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil
		}
		if err != nil {
			return err
		}
		deadline = past
	}
}

// down moves plaintext from the event loop to the TLS client, borrowing a
// buffer only once the socket pair is readable. It reports whether it
// ended because the loop closed its end (EOF, or a reset when the loop
// left input unread) rather than because the client stopped taking data.
func (c *bridged) down() (loopClosed bool) {
	rc, err := c.plain.(syscall.Conn).SyscallConn()
	if err != nil {
		return false
	}
	for {
		if err := waitReadable(rc); err != nil {
			return true
		}
		bp := bufs.Get().(*[]byte)
		n, err := c.plain.Read(*bp)
		var werr error
		if n > 0 {
			_ = c.raw.SetWriteDeadline(time.Now().Add(c.writeTimeout))
			_, werr = c.tc.Write((*bp)[:n])
		}
		bufs.Put(bp)
		if werr != nil {
			return false
		}
		if err != nil {
			return true
		}
	}
}

// waitReadable blocks, in the runtime's netpoller and with no buffer, until
// the socket has data to read or has been closed (EOF counts as readable:
// the read that follows reports it).
func waitReadable(rc syscall.RawConn) error {
	var one [1]byte
	var serr error
	err := rc.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if e == syscall.EAGAIN || e == syscall.EINTR {
			return false
		}
		serr = e
		return true
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	return nil
}

// socketPair returns the two ends of a connected Unix stream socket pair:
// the first for the event loops, the second for the bridge.
func socketPair() (net.Conn, net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	a, err := fileConn(fds[0], "herald-tls-loop")
	if err != nil {
		syscall.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1], "herald-tls-bridge")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// fileConn turns fd into a net.Conn; fd is closed (net.FileConn keeps a
// duplicate).
func fileConn(fd int, name string) (net.Conn, error) {
	syscall.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, &net.OpError{Op: "fileconn", Net: "unix", Err: err}
	}
	return c, nil
}
