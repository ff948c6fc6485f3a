package loadgen

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
)

const testTokenSecret = "loadgen-test-secret-0123456789abcdef"

func TestTokenBase(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, uri, want string }{
		{name: "no query", uri: "/ws", want: "/ws?"},
		{name: "empty query", uri: "/ws?", want: "/ws?"},
		{name: "channels kept", uri: "/ws?channel=bench&channel=room%3A1", want: "/ws?channel=bench&channel=room%3A1&"},
		{name: "token replaced", uri: "/ws?channel=bench&token=OLD&format=raw", want: "/ws?channel=bench&format=raw&"},
		{name: "only a token", uri: "/?token=OLD", want: "/?"},
		{name: "bare token key", uri: "/ws?token&channel=a", want: "/ws?channel=a&"},
		{name: "tokens is another key", uri: "/ws?tokens=1", want: "/ws?tokens=1&"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tokenBase(tc.uri); got != tc.want {
				t.Errorf("tokenBase(%q) = %q, want %q", tc.uri, got, tc.want)
			}
		})
	}
}

// TestTokenDefaults checks the channels the tokens grant when none are
// given, and the refusal of a short secret.
func TestTokenDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, channel string
		channels, want     []string
	}{
		{name: "the URL's channels", url: "ws://127.0.0.1:1/ws?channel=a&channel=b&token=x", want: []string{"a", "b"}},
		{name: "no channel in the URL", url: "ws://127.0.0.1:1/ws", want: []string{"bench"}},
		{name: "the recovery channel", url: "ws://127.0.0.1:1/ws", channel: "news", want: []string{"news"}},
		{name: "given", url: "ws://127.0.0.1:1/ws?channel=a", channels: []string{"room:*"}, want: []string{"room:*"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := Config{URL: tc.url, Channel: tc.channel, TokenSecret: testTokenSecret, TokenChannels: tc.channels}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.TokenChannels, tc.want) || cfg.TokenTTL != 24*time.Hour {
				t.Errorf("channels %q, ttl %s; want %q, 24h", cfg.TokenChannels, cfg.TokenTTL, tc.want)
			}
		})
	}
	if _, err := (Config{URL: "ws://127.0.0.1:1/ws", TokenSecret: "short"}).withDefaults(); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
}

// TestTokenMinterStable checks that an index always gets the same token,
// minted up front or on the spot, and that indices differ.
func TestTokenMinterStable(t *testing.T) {
	t.Parallel()
	cfg, err := Config{URL: "ws://127.0.0.1:1/ws?channel=bench", Conns: 3, TokenSecret: testTokenSecret, TokenFirst: 10}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m, err := newTokenMinter(cfg)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 5 { // 3 and 4 are past Conns
		a, errA := m.token(i)
		b, errB := m.token(i)
		if errA != nil || errB != nil || a != b {
			t.Fatalf("index %d: tokens %q (%v) and %q (%v), want one token twice", i, a, errA, b, errB)
		}
		if seen[a] {
			t.Fatalf("index %d: token already given to another index", i)
		}
		seen[a] = true
	}
	tokens := make([]string, 0, len(seen))
	for tok := range seen {
		tokens = append(tokens, tok)
	}
	checkTokens(t, tokens, 10, 5, 1)
}

// checkTokens asserts that tokens, presented by connections first to
// first+n-1, verify with testTokenSecret and grant bench, that each
// connection presented its own token (sub u<index>) at least atLeast times,
// and always the same one.
func checkTokens(t *testing.T, tokens []string, first, n, atLeast int) {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{HMACSecret: []byte(testTokenSecret)})
	if err != nil {
		t.Fatal(err)
	}
	bySub := map[string]string{}
	count := map[string]int{}
	for _, tok := range tokens {
		c, err := v.Verify(tok)
		if err != nil {
			t.Fatalf("token does not verify: %v", err)
		}
		if !c.CanSubscribe("bench") || c.ExpiresAt.IsZero() {
			t.Errorf("sub %s: channels %q, exp %v; want bench and an expiry", c.Subject, c.SubscribePatterns(), c.ExpiresAt)
		}
		if prev, ok := bySub[c.Subject]; ok && prev != tok {
			t.Errorf("sub %s presented two different tokens", c.Subject)
		}
		bySub[c.Subject] = tok
		count[c.Subject]++
	}
	if len(bySub) != n {
		t.Errorf("%d subjects, want %d", len(bySub), n)
	}
	for i := first; i < first+n; i++ {
		sub := "u" + strconv.Itoa(i)
		if count[sub] < atLeast {
			t.Errorf("sub %s presented %d times, want at least %d", sub, count[sub], atLeast)
		}
	}
}

// TestTokenPerConnection runs connections with their own tokens against
// the fake server and checks what each presented, with worker processes
// and through a storm that reconnects every connection.
func TestTokenPerConnection(t *testing.T) {
	t.Parallel()
	const conns = 20
	tests := []struct {
		name     string
		scenario string
		procs    int
		// presented is how many times each connection handshakes.
		presented int
	}{
		{name: "idle", scenario: ScenarioIdle, presented: 1},
		{name: "two worker processes", scenario: ScenarioIdle, procs: 2, presented: 1},
		{name: "storm reconnects with the same tokens", scenario: ScenarioStorm, presented: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, fakePolicy{})
			cfg := srv.baseConfig(tc.scenario)
			cfg.URL += "?channel=bench&token=shared"
			cfg.TokenSecret = testTokenSecret
			if tc.procs > 1 {
				cfg.Procs, cfg.Exe, cfg.ExeArgs = tc.procs, os.Args[0], []string{"-test.run=^$"}
			}
			res := run(t, cfg)
			if res.Connected != conns || res.OpenAtEnd != conns {
				t.Fatalf("connected %d, open at end %d; want %d", res.Connected, res.OpenAtEnd, conns)
			}
			srv.mu.Lock()
			tokens := slices.Clone(srv.tokens)
			srv.mu.Unlock()
			if len(tokens) != conns*tc.presented {
				t.Fatalf("%d handshakes presented a token, want %d", len(tokens), conns*tc.presented)
			}
			if slices.Contains(tokens, "shared") {
				t.Error("the URL's own token was presented")
			}
			if !slices.Equal(res.TokenChannels, []string{"bench"}) {
				t.Errorf("result's token channels %q, want [bench]", res.TokenChannels)
			}
			checkTokens(t, tokens, 0, conns, tc.presented)
		})
	}
}

// TestTokenJitterReconnects checks that a recovering client presents its
// own token again on every reconnection.
func TestTokenJitterReconnects(t *testing.T) {
	t.Parallel()
	hub := newFakeHub()
	node := newFakeNode(t, hub)
	cfg := recoveryConfig(ScenarioJitter, node.URL+"/publish", node.wsURL())
	cfg.JitterEvery, cfg.JitterDist, cfg.Offline = 300*time.Millisecond, JitterUniform, 100*time.Millisecond
	cfg.TokenSecret = testTokenSecret
	res := run(t, cfg)
	checkComplete(t, res, 20)
	if res.Recovery.ReconnectedClients != 20 {
		t.Fatalf("%d clients reconnected, want 20", res.Recovery.ReconnectedClients)
	}
	node.mu.Lock()
	tokens := slices.Clone(node.tokens)
	node.mu.Unlock()
	checkTokens(t, tokens, 0, 20, 2)
}

// BenchmarkTokenMint is the up-front cost per connection.
func BenchmarkTokenMint(b *testing.B) {
	m := &tokenMinter{secret: []byte(testTokenSecret), channels: []string{"bench"}, iat: time.Now(), exp: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := m.mint(i); err != nil {
			b.Fatal(err)
		}
	}
}
