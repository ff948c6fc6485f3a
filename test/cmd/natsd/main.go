// Command natsd runs a NATS server with JetStream from the nats-server Go
// module, for scripts/load-cluster.sh on machines without a nats-server
// binary. It is a development tool in the test module (so nats-server
// stays out of the root module): production deployments run the official
// nats-server.
//
//	cd test && go run ./cmd/natsd -port 4222 -store /var/tmp/herald-nats
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	host := flag.String("host", "127.0.0.1", "listen address")
	port := flag.Int("port", 4222, "client port")
	store := flag.String("store", "", "JetStream store directory (default: a temporary one)")
	flag.Parse()
	if *store == "" {
		dir, err := os.MkdirTemp("", "natsd-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "natsd:", err)
			os.Exit(1)
		}
		*store = dir
	}
	s, err := server.NewServer(&server.Options{Host: *host, Port: *port, JetStream: true, StoreDir: *store, NoSigs: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsd:", err)
		os.Exit(1)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		fmt.Fprintln(os.Stderr, "natsd: not ready within 10s")
		os.Exit(1)
	}
	fmt.Println("READY", s.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}
