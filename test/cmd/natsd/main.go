// Command natsd runs a NATS server with JetStream from the nats-server Go
// module, for scripts/load-cluster.sh and bench/storms.sh on machines
// without a nats-server binary. It is a development tool in the test
// module (so nats-server stays out of the root module): production
// deployments run the official nats-server.
//
//	cd test && go run ./cmd/natsd -port 4222 -store /var/tmp/herald-nats
//
// With -cluster it joins a JetStream cluster: every server gets its own
// -name, -port, -cluster listener and -store, and the same -routes (every
// server's cluster listener; its own may be among them):
//
//	R=nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224
//	natsd -name nats-1 -port 4222 -cluster 127.0.0.1:6222 -routes $R -store /var/tmp/n1 &
//	natsd -name nats-2 -port 4223 -cluster 127.0.0.1:6223 -routes $R -store /var/tmp/n2 &
//	natsd -name nats-3 -port 4224 -cluster 127.0.0.1:6224 -routes $R -store /var/tmp/n3 &
//
// It prints "READY nats://HOST:PORT" once JetStream is usable through it:
// alone, once it accepts clients; in a cluster, once it follows an
// elected meta leader and a stream with one replica per server
// (-cluster-size) can be created through it, which needs every server up.
// SIGTERM or SIGINT stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/herald-push/herald/test/internal/natstest"
)

func main() {
	var m natstest.Member
	flag.StringVar(&m.Host, "host", "127.0.0.1", "listen address")
	flag.IntVar(&m.Port, "port", 4222, "client port")
	flag.StringVar(&m.Dir, "store", "", "JetStream store directory (default: a temporary one)")
	flag.StringVar(&m.Name, "name", "", "server name, unique in the cluster (default natsd-PORT)")
	flag.StringVar(&m.Cluster, "cluster", "", "cluster route listener HOST:PORT; empty: no cluster")
	flag.StringVar(&m.ClusterName, "cluster-name", "herald", "cluster name, the same on every server of the cluster")
	flag.StringVar(&m.Routes, "routes", "", "the cluster's route URLs, comma-separated: nats-route://HOST:PORT,...")
	size := flag.Int("cluster-size", 0, "servers the READY check needs (replicas of its test stream; default: the distinct addresses of -routes and -cluster)")
	wait := flag.Duration("ready-timeout", time.Minute, "how long to wait for JetStream to be usable before giving up")
	flag.Parse()
	if m.Name == "" {
		m.Name = fmt.Sprintf("natsd-%d", m.Port)
	}
	if *size <= 0 {
		*size = m.Size()
	}
	if m.Dir == "" {
		dir, err := os.MkdirTemp("", "natsd-")
		if err != nil {
			fail(err)
		}
		m.Dir = dir
	}
	opts, err := m.Options()
	if err != nil {
		fail(err)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		fail(err)
	}
	go s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), *wait)
	err = natstest.WaitJetStream(ctx, s, *size)
	cancel()
	if err != nil {
		s.Shutdown()
		fail(err)
	}
	fmt.Println("READY", s.ClientURL())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	s.Shutdown()
	s.WaitForShutdown()
}

// fail reports err and exits.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "natsd:", err)
	os.Exit(1)
}
