// Command gnet is the benchmark's floor: a bare gnet/v2 event-loop server
// with gobwas/ws framing and no features. Connections own no goroutine;
// each loop keeps the set of its upgraded connections, touched only on
// that loop; a broadcast encodes the frame once and hands it to each loop
// once (gnet's EventLoop.Execute), which writes it to each of its
// connections. It shows what herald's features cost on the same stack.
package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/gobwas/ws"
	"github.com/herald-push/herald/bench/internal/peer"
	"github.com/panjf2000/gnet/v2"
)

type server struct {
	gnet.BuiltinEventEngine
	n atomic.Int64

	mu    sync.Mutex // guards loops (the map, not the sets)
	loops map[gnet.EventLoop]*loopSet
}

// loopSet is one loop's upgraded connections; loop goroutine only.
type loopSet struct {
	conns map[gnet.Conn]struct{}
}

// conn is a connection's state; loop goroutine only.
type conn struct{ upgraded bool }

func (s *server) loop(el gnet.EventLoop) *loopSet {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.loops[el]
	if l == nil {
		l = &loopSet{conns: map[gnet.Conn]struct{}{}}
		s.loops[el] = l
	}
	return l
}

func (s *server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(&conn{})
	return nil, gnet.None
}

func (s *server) OnClose(c gnet.Conn, err error) gnet.Action {
	if st, ok := c.Context().(*conn); ok && st.upgraded {
		delete(s.loop(c.EventLoop()).conns, c)
		s.n.Add(-1)
	}
	return gnet.None
}

var headerEnd = []byte("\r\n\r\n")

func (s *server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*conn)
	if !st.upgraded {
		buf, _ := c.Peek(-1)
		if !bytes.Contains(buf, headerEnd) {
			if len(buf) > 8192 {
				return gnet.Close
			}
			return gnet.None
		}
		if _, err := ws.Upgrade(c); err != nil {
			return gnet.Close
		}
		st.upgraded = true
		s.loop(c.EventLoop()).conns[c] = struct{}{}
		s.n.Add(1)
	}
	for {
		buf, _ := c.Peek(-1)
		if len(buf) < 2 {
			return gnet.None
		}
		h, err := ws.ReadHeader(bytes.NewReader(buf))
		if err != nil {
			if len(buf) < ws.MaxHeaderSize {
				return gnet.None // header incomplete
			}
			return gnet.Close
		}
		hs := headerSize(h)
		total := hs + int(h.Length)
		if len(buf) < total {
			return gnet.None
		}
		payload := buf[hs:total]
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			out, _ := ws.CompileFrame(ws.NewFrame(h.OpCode, true, bytes.Clone(payload)))
			_, _ = c.Write(out)
		case ws.OpPing:
			out, _ := ws.CompileFrame(ws.NewPongFrame(bytes.Clone(payload)))
			_, _ = c.Write(out)
		case ws.OpClose:
			_, _ = c.Write(ws.CompiledCloseNormalClosure)
			return gnet.Close
		}
		_, _ = c.Discard(total)
	}
}

func headerSize(h ws.Header) int {
	n := 2
	switch {
	case h.Length > 0xFFFF:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

func (s *server) broadcast(body []byte) int {
	frame := ws.MustCompileFrame(ws.NewTextFrame(body))
	s.mu.Lock()
	loops := make(map[gnet.EventLoop]*loopSet, len(s.loops))
	for el, l := range s.loops {
		loops[el] = l
	}
	s.mu.Unlock()
	for el, l := range loops {
		_ = el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			for c := range l.conns {
				_, _ = c.Write(frame)
			}
			return nil
		}))
	}
	return int(s.n.Load())
}

func main() {
	listen, pub := peer.Flags()
	s := &server{loops: map[gnet.EventLoop]*loopSet{}}
	peer.ServePublish(pub, s.broadcast, func() int { return int(s.n.Load()) })
	go func() {
		err := gnet.Run(s, "tcp://"+listen, gnet.WithMulticore(true), gnet.WithReusePort(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}()
	peer.Wait()
}
