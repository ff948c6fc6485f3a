package pusher

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/procstat"
	"github.com/herald-push/herald/internal/testutil"
)

// TestFanoutPusherVsHerald measures, on one herald node, the server CPU
// per delivered message and the memory per idle connection for Pusher
// protocol clients (/app/{key}) next to herald-protocol clients (/ws): N
// of each subscribed to a channel of their own, K events published to
// each (the Pusher one through the signed Pusher HTTP API, the herald one
// through /api/publish), the two phases interleaved over R rounds. It is
// a measurement (bench/PUSHER.md), not a test of a feature: it skips
// unless HERALD_BENCH=1.
func TestFanoutPusherVsHerald(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("a measurement: set HERALD_BENCH=1 (bench/PUSHER.md)")
	}
	n, k, rounds := benchEnv("HERALD_BENCH_CONNS", 2000), benchEnv("HERALD_BENCH_K", 100), benchEnv("HERALD_BENCH_ROUNDS", 3)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(appSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Binary(t, "herald")
	p := testutil.Start(t, bin, "serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous",
		"--pusher-app-id", "1", "--pusher-key", appKey, "--pusher-secret-file", secret, "--log-level=warn",
		"--max-handshakes-per-ip", "-1", "--ping-interval=0", "--pprof")
	api := p.Extra["api"]
	pid := p.Cmd.Process.Pid

	var got [2]atomic.Int64 // deliveries: [0] Pusher, [1] herald
	var unused atomic.Int64
	pusherURL := "ws://" + p.Addr + "/app/" + appKey + "?protocol=7&client=bench&version=1"
	pusherSub := `{"event":"pusher:subscribe","data":{"channel":"bench-pusher"}}`
	const pusherReady = "pusher_internal:subscription_succeeded"
	// herald clients subscribe with a command, as Pusher clients must
	// (a herald client may also name its channels in the URL).
	heraldURL := "ws://" + p.Addr + "/ws"
	heraldSub := `{"op":"sub","channel":"bench-herald"}`
	const heraldReady = `"op":"subscribed"`
	// Warm up both paths (the loops' buffers, the heap's first growth),
	// then let the server's collector settle before each reading.
	warm := append(fanoutDial(t, 200, pusherURL, pusherSub, pusherReady, &unused),
		fanoutDial(t, 200, heraldURL, heraldSub, heraldReady, &unused)...)
	// settled collects the server's garbage (pprof's heap?gc=1) and
	// reads its RSS and live heap.
	settled := func() [2]int64 {
		resp, err := http.Get("http://" + api + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(time.Second)
		rss, _ := p.RSS()
		return [2]int64{rss, int64(testutil.Metric(t, api, "go_memstats_heap_alloc_bytes"))}
	}
	// The two kinds are opened in alternating quarters, so that neither
	// pays alone for the heap's growth as the count rises.
	var pusherConns, heraldConns []*websocket.Conn
	var added [2][2]int64 // [kind][rss, heap]
	last := settled()
	for range 4 {
		pusherConns = append(pusherConns, fanoutDial(t, n/4, pusherURL, pusherSub, pusherReady, &got[0])...)
		now := settled()
		heraldConns = append(heraldConns, fanoutDial(t, n/4, heraldURL, heraldSub, heraldReady, &got[1])...)
		next := settled()
		for i := range 2 {
			added[0][i] += now[i] - last[i]
			added[1][i] += next[i] - now[i]
		}
		last = next
	}
	n = len(pusherConns)
	defer func() {
		for _, c := range append(append(pusherConns, heraldConns...), warm...) {
			c.Close()
		}
	}()
	per := func(v int64) float64 { return float64(v) / float64(n) }
	t.Logf("per idle connection (after 200 of each to warm up, opened in alternating quarters, N = %d each): RSS Pusher %.0f B, herald %.0f B; live heap Pusher %.0f B, herald %.0f B",
		n, per(added[0][0]), per(added[1][0]), per(added[0][1]), per(added[1][1]))

	payload := strings.Repeat("x", 100)
	publish := [2]func(){
		func() {
			body, _ := json.Marshal(map[string]any{"name": "tick", "channel": "bench-pusher", "data": payload})
			pusherPost(t, api, "/apps/1/events", body)
		},
		func() {
			resp, err := http.Post("http://"+api+"/api/publish?channel=bench-herald", "application/json", strings.NewReader(`"`+payload+`"`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("publish: %s", resp.Status)
			}
		},
	}
	var perMsg [2][]float64 // µs of server CPU per delivered message, per round
	for range rounds {
		for side := range 2 {
			want := got[side].Load() + int64(k*n)
			t0 := procstat.CPUTicks(pid)
			for range k {
				publish[side]()
			}
			deadline := time.Now().Add(2 * time.Minute)
			for got[side].Load() < want {
				if time.Now().After(deadline) {
					t.Fatalf("side %d: %d of %d deliveries", side, got[side].Load(), want)
				}
				time.Sleep(5 * time.Millisecond)
			}
			ticks := procstat.CPUTicks(pid) - t0
			perMsg[side] = append(perMsg[side], float64(ticks)*10_000/float64(k*n)) // 10 ms ticks → µs
		}
	}
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[len(s)/2]
	}
	t.Logf("server CPU per delivered message (K = %d events of %d B to N = %d, %d rounds): Pusher %.2f µs %v, herald %.2f µs %v, ratio %.2f",
		k, len(payload), n, rounds, med(perMsg[0]), perMsg[0], med(perMsg[1]), perMsg[1], med(perMsg[0])/med(perMsg[1]))
}

// benchEnv reads a positive integer from the environment, or def.
func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fanoutDial opens n connections to u, sends subscribe (if any) on each,
// waits for a frame containing ready, and then counts every further
// frame in got.
func fanoutDial(t *testing.T, n int, u, subscribe, ready string, got *atomic.Int64) []*websocket.Conn {
	t.Helper()
	conns := make([]*websocket.Conn, 0, n)
	var wg sync.WaitGroup
	for range n {
		c, _, err := websocket.DefaultDialer.Dial(u, nil)
		if err != nil {
			t.Fatalf("dial %s: %v", u, err)
		}
		if subscribe != "" {
			if err := c.WriteMessage(websocket.TextMessage, []byte(subscribe)); err != nil {
				t.Fatal(err)
			}
		}
		for {
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, m, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("waiting for %s: %v", ready, err)
			}
			if bytes.Contains(m, []byte(ready)) {
				break
			}
		}
		_ = c.SetReadDeadline(time.Time{})
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := c.NextReader(); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	t.Cleanup(wg.Wait)
	return conns
}

// pusherPost sends a request to the Pusher HTTP API signed as Pusher's
// server libraries sign it (auth_version 1.0, body_md5, HMAC-SHA256).
func pusherPost(t *testing.T, api, path string, body []byte) {
	t.Helper()
	sum := md5.Sum(body)
	q := url.Values{}
	q.Set("auth_key", appKey)
	q.Set("auth_timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	q.Set("auth_version", "1.0")
	q.Set("body_md5", hex.EncodeToString(sum[:]))
	mac := hmac.New(sha256.New, []byte(appSecret))
	fmt.Fprintf(mac, "POST\n%s\n%s", path, q.Encode()) // Encode sorts by key
	q.Set("auth_signature", hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.Post("http://"+api+path+"?"+q.Encode(), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}
