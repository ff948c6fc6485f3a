package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestWSPublisherCloseKeepsLastMessages: a server that reads the
// publishing connection slowly and answers each message on it (as a
// server that broadcasts to every connection does) still receives every
// message published before close. Closing at once made the publisher's
// kernel reset the connection when an answer arrived, and the reset
// dropped the messages the server had not read yet.
func TestWSPublisherCloseKeepsLastMessages(t *testing.T) {
	t.Parallel()
	const n = 5
	var got atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		nc, rw, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer nc.Close()
		rd := &wsutil.Reader{Source: rw.Reader, State: ws.StateServerSide}
		for {
			h, err := rd.NextFrame()
			if err != nil {
				return
			}
			p, err := io.ReadAll(rd)
			if err != nil || h.OpCode == ws.OpClose {
				return
			}
			if bytes.HasPrefix(p, []byte("PUB ")) {
				got.Add(1)
			}
			time.Sleep(20 * time.Millisecond) // a slow reader
			if err := wsutil.WriteServerMessage(nc, ws.OpText, p); err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	pub, err := newWSPublisher(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/", "PUB {payload}", nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := pub.publish(context.Background(), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	pub.close()
	<-done
	if got.Load() != n {
		t.Fatalf("server received %d of %d messages", got.Load(), n)
	}
}
