package poller

import (
	"bytes"
	"sync/atomic"
	"testing"
)

// TestPartialInputEditsKept: a Handler that rewrites every byte it is
// shown in place (as a TLS record layer decrypts, or a decoder unmasks)
// and consumes only complete lines gets its rewritten bytes back, before
// the new ones, on every backend, however the bytes arrive. The test runs
// on the default backend; make test runs it again on gnet.
func TestPartialInputEditsKept(t *testing.T) {
	t.Parallel()
	var pieces [][]byte
	for i := range 40 {
		p := bytes.Repeat([]byte{'a' + byte(i%26)}, 1000+i*37)
		if i%7 == 6 {
			p = append(p, '\n')
		}
		pieces = append(pieces, p)
	}
	pieces = append(pieces, []byte("end\n"))
	var seen atomic.Int64  // bytes read so far: consumed, plus the last OnData's in
	done, consumed := 0, 0 // bytes at the front of in already rewritten, bytes consumed; loop only
	s := startServer(t, Config{Loops: 1}, &funcs{
		data: func(c *Conn, in []byte) int {
			seen.Store(int64(consumed + len(in)))
			for i := done; i < len(in); i++ {
				if in[i] >= 'a' && in[i] <= 'z' {
					in[i] -= 'a' - 'A'
				}
			}
			done = len(in)
			n := bytes.LastIndexByte(in, '\n') + 1
			if n > 0 {
				c.Write(bytes.Clone(in[:n]))
			}
			done -= n
			consumed += n
			return n
		},
	})
	nc := dial(t, s)
	sent := 0
	for _, p := range pieces {
		if _, err := nc.Write(p); err != nil {
			t.Fatal(err)
		}
		sent += len(p)
		// Each piece arrives on its own, behind the bytes kept before.
		waitFor(t, "the piece to be read", func() bool { return seen.Load() == int64(sent) })
	}
	want := bytes.ToUpper(bytes.Join(pieces, nil))
	if got := readN(t, nc, sent); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("echo differs from byte %d of %d: edits to unconsumed bytes were lost", i, len(want))
	}
}
