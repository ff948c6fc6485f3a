package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/internal/testutil"
)

// Member describes one NATS server of a JetStream cluster (or a server
// alone, when Cluster is empty).
type Member struct {
	// Name is the server's name (server_name), unique in the cluster.
	Name string
	// Host and Port are the client listener (Port 0: any free port).
	Host string
	Port int
	// Dir is the JetStream store directory.
	Dir string
	// ClusterName names the cluster (the servers of one cluster share
	// it), Cluster is this server's route listener (host:port; empty:
	// no cluster) and Routes the route URLs of the cluster's servers,
	// comma-separated (nats-route://host:port; this server's own may be
	// among them).
	ClusterName, Cluster, Routes string
}

// Options returns the nats-server options of m: JetStream on, and with
// m.Cluster the cluster listener and routes (server.RoutesFromStr).
func (m Member) Options() (*server.Options, error) {
	port := m.Port
	if port == 0 {
		port = -1
	}
	o := &server.Options{ServerName: m.Name, Host: m.Host, Port: port, JetStream: true, StoreDir: m.Dir, NoSigs: true}
	if m.Cluster == "" {
		return o, nil
	}
	host, p, err := net.SplitHostPort(m.Cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster listener %q: %w", m.Cluster, err)
	}
	cport, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("cluster listener %q: port: %w", m.Cluster, err)
	}
	if m.Name == "" || m.ClusterName == "" {
		return nil, errors.New("a JetStream cluster needs a server name and a cluster name")
	}
	o.Cluster = server.ClusterOpts{Name: m.ClusterName, Host: host, Port: cport}
	if m.Routes != "" {
		o.Routes = server.RoutesFromStr(m.Routes)
		for _, u := range o.Routes {
			if u == nil || u.Host == "" {
				return nil, fmt.Errorf("routes %q: want nats-route://HOST:PORT URLs, comma-separated", m.Routes)
			}
		}
	}
	return o, nil
}

// Size is the number of servers m's cluster has: the distinct addresses
// of its routes and of its own listener (1 without a cluster).
func (m Member) Size() int {
	if m.Cluster == "" {
		return 1
	}
	seen := map[string]bool{m.Cluster: true}
	for _, u := range server.RoutesFromStr(m.Routes) {
		if u != nil && u.Host != "" {
			seen[u.Host] = true
		}
	}
	return len(seen)
}

// WaitJetStream waits until JetStream is usable through s: s accepts
// clients, and in a cluster it follows an elected meta leader
// (JetStreamIsCurrent) and a memory stream with replicas replicas can be
// created (and is deleted again) through its client port, which needs
// that many servers in the meta group.
func WaitJetStream(ctx context.Context, s *server.Server, replicas int) error {
	for !s.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil {
			return fmt.Errorf("nats server %s: not accepting clients: %w", s.Name(), ctx.Err())
		}
	}
	if !s.JetStreamIsClustered() {
		if !s.JetStreamEnabled() {
			return fmt.Errorf("nats server %s: JetStream is off", s.Name())
		}
		return nil
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Name("natsd readiness"), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("nats server %s: connect: %w", s.Name(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("nats server %s: jetstream: %w", s.Name(), err)
	}
	name := "NATSD_READY_" + s.ID() // one per server: they check at once
	var last error
	for {
		if s.JetStreamIsCurrent() {
			if last = tryStream(ctx, js, name, replicas); last == nil {
				return nil
			}
		} else {
			last = errors.New("no meta leader yet")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nats server %s: JetStream not usable with %d replicas: %w (last: %v)", s.Name(), replicas, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryStream creates the memory stream name with replicas and deletes it.
func tryStream(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{"natsd.ready." + name}, Storage: jetstream.MemoryStorage, Replicas: replicas,
	})
	if err != nil {
		return fmt.Errorf("creating a stream with %d replicas: %w", replicas, err)
	}
	if err := js.DeleteStream(ctx, name); err != nil {
		return fmt.Errorf("deleting the test stream: %w", err)
	}
	return nil
}

// Cluster is a JetStream cluster of NATS servers inside the test process.
type Cluster struct {
	Servers []*server.Server
}

// StartCluster runs n NATS servers on 127.0.0.1 joined by routes into
// one JetStream cluster (named herald, servers nats-1 … nats-n), each
// storing under its own folder of dir, and waits until JetStream takes
// streams with n replicas through every one of them. Each is shut down
// when the test ends.
func StartCluster(t testing.TB, n int, dir string) *Cluster {
	t.Helper()
	members := make([]Member, n)
	var routes []string
	for i := range members {
		members[i] = Member{
			Name: fmt.Sprintf("nats-%d", i+1), Host: "127.0.0.1", Port: testutil.FreePort(t),
			Dir: fmt.Sprintf("%s/nats-%d", dir, i+1), ClusterName: "herald",
			Cluster: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		}
		routes = append(routes, (&url.URL{Scheme: "nats-route", Host: members[i].Cluster}).String())
	}
	c := &Cluster{}
	for i := range members {
		members[i].Routes = strings.Join(routes, ",")
		o, err := members[i].Options()
		if err != nil {
			t.Fatal(err)
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("nats server %s: %v", members[i].Name, err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		c.Servers = append(c.Servers, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, s := range c.Servers {
		if err := WaitJetStream(ctx, s, n); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// URLs is every server's client URL, comma-separated, as herald's
// --broker takes them.
func (c *Cluster) URLs() string {
	var us []string
	for _, s := range c.Servers {
		us = append(us, s.ClientURL())
	}
	return strings.Join(us, ",")
}

// URLsFrom is URLs with server i first: a client connects to the first
// URL it can reach, so a node given URLsFrom(i) starts on server i.
func (c *Cluster) URLsFrom(i int) string {
	var us []string
	for k := range c.Servers {
		us = append(us, c.Servers[(i+k)%len(c.Servers)].ClientURL())
	}
	return strings.Join(us, ",")
}
