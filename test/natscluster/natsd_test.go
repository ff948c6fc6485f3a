package natscluster

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/internal/testutil"
)

// TestNatsdCluster: three test/cmd/natsd processes started with -name,
// -cluster and the same -routes each print READY, and then a stream with
// 3 replicas can be created through any of them; SIGTERM stops them.
func TestNatsdCluster(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "natsd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/natsd")
	build.Dir = ".." // the test module
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/natsd: %v\n%s", err, out)
	}
	var ports, routes []string
	for range 3 {
		ports = append(ports, fmt.Sprint(testutil.FreePort(t)))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", testutil.FreePort(t)))
	}
	ready := make(chan string, 3)
	var procs []*exec.Cmd
	for i := range 3 {
		cmd := exec.Command(bin, "-name", fmt.Sprintf("nats-%d", i+1), "-port", ports[i],
			"-cluster", strings.TrimPrefix(routes[i], "nats-route://"), "-routes", strings.Join(routes, ","),
			"-store", t.TempDir())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr testutil.SyncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, cmd)
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill() // by PID
				_ = cmd.Wait()
			}
		})
		go func() {
			line, _ := bufio.NewReader(out).ReadString('\n')
			if line == "" {
				line = "exited: " + stderr.String()
			}
			ready <- strings.TrimSpace(line)
		}()
	}
	got := map[string]bool{}
	for range 3 {
		select {
		case line := <-ready:
			if !strings.HasPrefix(line, "READY nats://127.0.0.1:") {
				t.Fatalf("natsd printed %q, want READY and its URL", line)
			}
			got[strings.TrimPrefix(line, "READY ")] = true
		case <-time.After(wait):
			t.Fatalf("only %d of 3 natsd READY after %v", len(got), wait)
		}
	}
	for _, p := range ports {
		u := "nats://127.0.0.1:" + p
		if !got[u] {
			t.Fatalf("no READY for %s (got %v)", u, got)
		}
		nc, err := nats.Connect(u)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		name := "R3_" + p
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"r3." + p}, Replicas: 3, Storage: jetstream.MemoryStorage})
		cancel()
		nc.Close()
		if err != nil {
			t.Fatalf("a stream with 3 replicas through %s: %v", u, err)
		}
	}
	for _, cmd := range procs {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for i, cmd := range procs {
		if err := cmd.Wait(); err != nil {
			t.Errorf("natsd %d after SIGTERM: %v", i+1, err)
		}
	}
}
