package poller_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/herald-push/herald/poller"
)

// upper answers every complete line with the line in upper case, and closes
// connections that stay silent for a second.
type upper struct{}

func (upper) OnOpen(c *poller.Conn) { c.SetTimer(time.Second) }

func (upper) OnData(c *poller.Conn, in []byte) int {
	end := bytes.LastIndexByte(in, '\n') + 1 // a partial line waits for more
	if end > 0 {
		c.Write(bytes.ToUpper(in[:end]))
		c.SetTimer(time.Second)
	}
	return end
}

func (upper) OnTimer(c *poller.Conn)            { c.Close() }
func (upper) OnClose(c *poller.Conn, err error) {}

func Example() {
	srv := poller.NewServer(poller.Config{Loops: 1, TCPNoDelay: true}, upper{})
	go srv.Serve("127.0.0.1:0")
	<-srv.Ready()
	defer srv.Stop(context.Background())

	nc, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer nc.Close()
	fmt.Fprint(nc, "hel")
	fmt.Fprint(nc, "lo\n")
	reply := make([]byte, 6)
	if _, err := io.ReadFull(nc, reply); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%q\n", reply)
	// Output: "HELLO\n"
}
