package natstest

import "testing"

// TestMember: a member's nats-server options and cluster size, from the
// flags natsd takes.
func TestMember(t *testing.T) {
	t.Parallel()
	const routes = "nats-route://127.0.0.1:6222,nats-route://127.0.0.1:6223,nats-route://127.0.0.1:6224"
	cases := []struct {
		name    string
		m       Member
		size    int // 0: not checked
		routes  int
		wantErr bool
	}{
		{name: "alone", m: Member{Host: "127.0.0.1", Port: 4222}, size: 1},
		{name: "routes with its own", m: Member{Name: "n1", ClusterName: "herald", Cluster: "127.0.0.1:6222", Routes: routes}, size: 3, routes: 3},
		{name: "routes to the others", m: Member{Name: "n1", ClusterName: "herald", Cluster: "127.0.0.1:6222",
			Routes: "nats-route://127.0.0.1:6223, nats-route://127.0.0.1:6224"}, size: 3, routes: 2},
		{name: "seed without routes", m: Member{Name: "n1", ClusterName: "herald", Cluster: "127.0.0.1:6222"}, size: 1},
		{name: "no name", m: Member{ClusterName: "herald", Cluster: "127.0.0.1:6222", Routes: routes}, wantErr: true},
		{name: "no cluster name", m: Member{Name: "n1", Cluster: "127.0.0.1:6222", Routes: routes}, wantErr: true},
		{name: "bad listener", m: Member{Name: "n1", ClusterName: "herald", Cluster: "6222", Routes: routes}, wantErr: true},
		{name: "bad route", m: Member{Name: "n1", ClusterName: "herald", Cluster: "127.0.0.1:6222", Routes: "6223"}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.m.Size(); tc.size != 0 && got != tc.size {
				t.Errorf("Size() = %d, want %d", got, tc.size)
			}
			o, err := tc.m.Options()
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Options() = %+v, want an error", o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !o.JetStream || o.ServerName != tc.m.Name {
				t.Errorf("JetStream %v, server name %q", o.JetStream, o.ServerName)
			}
			if len(o.Routes) != tc.routes {
				t.Errorf("%d routes, want %d", len(o.Routes), tc.routes)
			}
			if tc.m.Cluster != "" && (o.Cluster.Name != "herald" || o.Cluster.Host != "127.0.0.1" || o.Cluster.Port != 6222) {
				t.Errorf("cluster %+v", o.Cluster)
			}
		})
	}
}
