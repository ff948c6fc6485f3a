package loadgen

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/auth"
)

// Tokens per connection (Config.TokenSecret): a reconnect storm of distinct
// users, where every handshake verifies a token the server has not seen
// from another connection. A connection index keeps its token for the whole
// run, so a reconnection presents the same token again, as a real client
// does.

// tokenDefaults fills in the token fields of a config whose URL is u.
func (cfg *Config) tokenDefaults(u *url.URL) error {
	if cfg.TokenSecret == "" {
		return nil
	}
	if len(cfg.TokenSecret) < auth.MinHMACSecret {
		return fmt.Errorf("loadgen: token secret is %d bytes, want at least %d", len(cfg.TokenSecret), auth.MinHMACSecret)
	}
	if cfg.TokenFirst < 0 {
		return fmt.Errorf("loadgen: token first index %d is negative", cfg.TokenFirst)
	}
	if cfg.TokenTTL == 0 {
		cfg.TokenTTL = 24 * time.Hour
	}
	if cfg.TokenTTL < 0 {
		return fmt.Errorf("loadgen: token ttl %s is negative", cfg.TokenTTL)
	}
	if len(cfg.TokenChannels) == 0 {
		cfg.TokenChannels = u.Query()["channel"]
	}
	if len(cfg.TokenChannels) == 0 {
		cfg.TokenChannels = []string{cfg.Channel}
	}
	return nil
}

// tokenMinter signs the tokens of one process's connections.
type tokenMinter struct {
	secret   []byte
	channels []string
	first    int
	iat, exp time.Time
	tokens   []string // by connection index, minted up front
}

// newTokenMinter mints the tokens of cfg's connections, or returns nil when
// cfg has no TokenSecret.
func newTokenMinter(cfg Config) (*tokenMinter, error) {
	if cfg.TokenSecret == "" {
		return nil, nil
	}
	now := time.Now().Truncate(time.Second)
	m := &tokenMinter{
		secret: []byte(cfg.TokenSecret), channels: cfg.TokenChannels, first: cfg.TokenFirst,
		iat: now, exp: now.Add(cfg.TokenTTL),
	}
	m.tokens = make([]string, cfg.Conns)
	for i := range m.tokens {
		tok, err := m.mint(i)
		if err != nil {
			return nil, err
		}
		m.tokens[i] = tok
	}
	return m, nil
}

// mint signs connection i's token. The same i gives the same token: HS256
// is deterministic and every claim is fixed at newTokenMinter.
func (m *tokenMinter) mint(i int) (string, error) {
	tok, err := auth.Sign(m.secret, auth.TokenSpec{
		Subject: "u" + strconv.Itoa(m.first+i), Subscribe: m.channels,
		IssuedAt: m.iat, ExpiresAt: m.exp,
	})
	if err != nil {
		return "", fmt.Errorf("loadgen: token %d: %w", m.first+i, err)
	}
	return tok, nil
}

// token returns connection i's token. An index past Config.Conns (a
// shootout step that replaces connections which gave up) is minted on the
// spot, to the same token each time.
func (m *tokenMinter) token(i int) (string, error) {
	if i >= 0 && i < len(m.tokens) {
		return m.tokens[i], nil
	}
	return m.mint(i)
}

// tokenBase returns uri (a request URI) without its token parameters and
// ready for one more: ending in '?' or '&'.
func tokenBase(uri string) string {
	path, query, _ := strings.Cut(uri, "?")
	var kept []string
	for p := range strings.SplitSeq(query, "&") {
		if p == "" || p == "token" || strings.HasPrefix(p, "token=") {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == 0 {
		return path + "?"
	}
	return path + "?" + strings.Join(kept, "&") + "&"
}

// requestURI returns the request URI connection i sends to node: the
// node's, with the connection's token when Config.TokenSecret is set.
func (f *fleet) requestURI(node, i int) (string, error) {
	t := f.targets[node]
	if f.tokens == nil {
		return t.uri, nil
	}
	tok, err := f.tokens.token(i)
	if err != nil {
		return "", err
	}
	// A JWT is base64url and dots: nothing in it needs escaping.
	return t.tokenBase + "token=" + tok, nil
}
