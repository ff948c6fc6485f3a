// Package natstest runs an embedded NATS server with JetStream for tests,
// from the nats-server Go module, so no daemon is needed. It lives in the
// test module, which keeps nats-server out of the root module.
package natstest

import (
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server with JetStream on 127.0.0.1, storing into dir,
// on port (0: any free port); it is shut down when the test ends.
func Start(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	if port == 0 {
		port = -1
	}
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Port is the port s listens on.
func Port(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }
