package pusherapi

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/pusher"
)

// AuthVersion is the only auth_version Pusher defines.
const AuthVersion = "1.0"

// authError is a refused signature: 401 with a plain-text reason.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }

func authErrorf(format string, args ...any) error {
	return &authError{fmt.Sprintf(format, args...)}
}

// params is a request's query with its keys in lower case (Pusher signs
// the keys lowered), one value per key.
type params map[string]string

// parseParams reads rawQuery. A key given twice (also in another case)
// is refused: the signature could not say which value it covers.
func parseParams(rawQuery string) (params, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query string: %v", err)
	}
	p := make(params, len(q))
	for k, vs := range q {
		lk := strings.ToLower(k)
		if _, dup := p[lk]; dup || len(vs) != 1 {
			return nil, fmt.Errorf("query parameter %q given more than once", lk)
		}
		p[lk] = vs[0]
	}
	return p, nil
}

// stringToSign is what Pusher signs: the method, the path and the sorted
// query without auth_signature, unescaped, joined by newlines.
func stringToSign(method, path string, p params) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		if k != "auth_signature" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(path)
	b.WriteByte('\n')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(p[k])
	}
	return b.String()
}

// sign is hex(HMAC-SHA256(secret, s)).
func sign(secret, s string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(s))
	return m.Sum(nil)
}

// verify checks a request's signature against app as Pusher does:
// auth_key is the app's key, auth_timestamp within window of now,
// auth_version 1.0, body_md5 the MD5 of a non-empty body (and checked
// when given for an empty one), and auth_signature the HMAC-SHA256 of the
// string to sign, compared in constant time. The path signed is the one
// sent, as decoded or as escaped (clients differ).
func verify(r *http.Request, p params, body []byte, app pusher.App, now time.Time, window time.Duration) error {
	for _, k := range []string{"auth_key", "auth_timestamp", "auth_version", "auth_signature"} {
		if _, ok := p[k]; !ok {
			return authErrorf("Missing %s", k)
		}
	}
	if !hmac.Equal([]byte(p["auth_key"]), []byte(app.Key)) {
		return authErrorf("Unknown auth_key")
	}
	if p["auth_version"] != AuthVersion {
		return authErrorf("Unsupported auth_version %q: only %s is supported", p["auth_version"], AuthVersion)
	}
	ts, err := strconv.ParseInt(p["auth_timestamp"], 10, 64)
	if err != nil {
		return authErrorf("Invalid auth_timestamp %q: want seconds since the epoch", p["auth_timestamp"])
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return authErrorf("Timestamp expired: given timestamp %d is not within %ds of server time %d", ts, int64(window/time.Second), now.Unix())
	}
	md5Given, hasMD5 := p["body_md5"]
	switch {
	case hasMD5:
		sum := md5.Sum(body)
		if !hmac.Equal([]byte(strings.ToLower(md5Given)), []byte(hex.EncodeToString(sum[:]))) {
			return authErrorf("The MD5 hash of the body does not match body_md5")
		}
	case len(body) > 0:
		return authErrorf("Missing body_md5: a request with a body signs its MD5")
	}
	given, err := hex.DecodeString(p["auth_signature"])
	if err != nil || len(given) != sha256.Size {
		return authErrorf("Invalid signature: auth_signature must be a hex HMAC-SHA256 digest")
	}
	s := stringToSign(r.Method, r.URL.Path, p)
	if hmac.Equal(given, sign(app.Secret, s)) {
		return nil
	}
	if esc := r.URL.EscapedPath(); esc != r.URL.Path && hmac.Equal(given, sign(app.Secret, stringToSign(r.Method, esc, p))) {
		return nil
	}
	return authErrorf("Invalid signature: expected the HMAC-SHA256 hex digest of %q with the app's secret", s)
}
