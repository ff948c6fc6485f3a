package auth

import (
	"fmt"
	"strings"
)

// OriginPolicy decides which browser origins may open a WebSocket, against
// cross-site WebSocket hijacking: a page on another site riding on the
// user's cookies or network position. It is immutable after
// [NewOriginPolicy] and safe for concurrent use; a nil *OriginPolicy applies
// the default rules alone.
//
// The rules, in order:
//   - no Origin header: allowed. Browsers always send one on WebSocket
//     upgrades, so its absence means a non-browser client, which no page
//     can impersonate.
//   - "*" in the list: any origin is allowed, "null" included.
//   - "null" (sandboxed frames, file: pages): refused.
//   - same host: allowed when the origin's host name equals the request's
//     Host name, case-insensitively, whatever the scheme and port (the demo
//     page is served from the API port, not the WebSocket port; another port
//     of the same host is the same operator).
//   - otherwise allowed only when an entry of the list matches.
//
// List entries are origins, "scheme://host[:port]", where the host may start
// with "*." (any subdomain, at any depth, not the bare domain) and the port
// may be "*" (any port, or none). An entry without a port matches only the
// scheme's default port (80 for http, 443 for https). Scheme and host
// compare case-insensitively; paths are not allowed.
type OriginPolicy struct {
	any   bool
	rules []originRule
}

// originRule is one compiled list entry.
type originRule struct {
	scheme  string
	host    string // without the "*" when wildSub: ".example.com"
	wildSub bool
	port    string // "" default port, "*" any, else digits
}

// NewOriginPolicy compiles the allowed origins (see [OriginPolicy]). An
// empty list keeps the default rules: no Origin or same host only.
func NewOriginPolicy(allowed []string) (*OriginPolicy, error) {
	p := &OriginPolicy{}
	for _, a := range allowed {
		if a == "*" {
			p.any = true
			continue
		}
		scheme, host, port, ok := splitOrigin(a)
		if !ok || host == "" {
			return nil, fmt.Errorf("auth: allowed origin %q: want scheme://host[:port]", a)
		}
		r := originRule{scheme: strings.ToLower(scheme), port: port}
		if port != "*" {
			r.port = normalPort(r.scheme, port)
			if !allDigits(r.port) {
				return nil, fmt.Errorf("auth: allowed origin %q: bad port", a)
			}
		}
		if rest, wild := strings.CutPrefix(host, "*."); wild {
			r.wildSub, host = true, "."+rest
		}
		if rest, _ := strings.CutPrefix(host, "."); rest == "" || strings.Contains(host, "*") {
			return nil, fmt.Errorf("auth: allowed origin %q: a wildcard host must look like *.example.com", a)
		}
		r.host = strings.ToLower(host)
		p.rules = append(p.rules, r)
	}
	return p, nil
}

// Allowed reports whether a WebSocket upgrade with this Origin header value
// (empty when absent) and this Host header value may proceed. It does not
// allocate.
func (p *OriginPolicy) Allowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	if p != nil && p.any {
		return true
	}
	scheme, ohost, port, ok := splitOrigin(origin)
	if !ok || ohost == "" || port == "*" || strings.Contains(ohost, "*") {
		return false // "null" and anything else that is not an origin
	}
	if reqHost := hostName(host); reqHost != "" && strings.EqualFold(ohost, reqHost) {
		return true
	}
	if p == nil {
		return false
	}
	for i := range p.rules {
		if p.rules[i].match(scheme, ohost, port) {
			return true
		}
	}
	return false
}

// match reports whether a parsed origin matches r.
func (r *originRule) match(scheme, host, port string) bool {
	if !strings.EqualFold(scheme, r.scheme) {
		return false
	}
	if r.port != "*" && normalPort(r.scheme, port) != r.port {
		return false
	}
	if r.wildSub {
		return len(host) > len(r.host) && strings.EqualFold(host[len(host)-len(r.host):], r.host)
	}
	return strings.EqualFold(host, r.host)
}

// splitOrigin splits "scheme://host[:port]"; an IPv6 host keeps its
// brackets. ok is false when the text is not of that form.
func splitOrigin(s string) (scheme, host, port string, ok bool) {
	scheme, rest, found := strings.Cut(s, "://")
	if !found || scheme == "" || strings.ContainsAny(rest, "/?#@ \\") {
		return "", "", "", false
	}
	host, port = splitHostPort(rest)
	if port != "*" && !allDigits(port) {
		return "", "", "", false
	}
	return scheme, host, port, true
}

// splitHostPort splits "host[:port]" without allocating; an IPv6 host keeps
// its brackets.
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, ""
		}
		host, rest := s[:end+1], s[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p
		}
		if rest != "" {
			return s, "x" // not digits: refused by the callers
		}
		return host, ""
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// hostName returns the host of a Host header value, without its port.
func hostName(hostHeader string) string {
	h, _ := splitHostPort(hostHeader)
	return h
}

// normalPort maps the scheme's default port to "".
func normalPort(scheme, port string) string {
	switch {
	case port == "80" && strings.EqualFold(scheme, "http"),
		port == "443" && strings.EqualFold(scheme, "https"):
		return ""
	}
	return port
}

// allDigits reports whether s is empty or decimal digits only.
func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
