package push

import (
	"net/url"
	"strings"

	"github.com/herald-push/herald/hub"
)

// query is a parsed URL query that keeps order and repeats.
type query [][2]string

// parseQuery parses a raw query; bad escapes keep the raw text.
func parseQuery(raw string) query {
	var q query
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		q = append(q, [2]string{unescape(k), unescape(v)})
	}
	return q
}

func unescape(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

func (q query) first(k string) string {
	for _, kv := range q {
		if kv[0] == k {
			return kv[1]
		}
	}
	return ""
}

func (q query) all(k string) []string {
	var out []string
	for _, kv := range q {
		if kv[0] == k {
			out = append(out, kv[1])
		}
	}
	return out
}

// pending returns the subscriptions the upgrade URL asks for: every
// channel= and, for those with a since=channel:offset:epoch, where to
// recover from (malformed since values are ignored). Nil when there are
// none.
func (q query) pending() *pendingSubs {
	var ps pendingSubs
	ps.channels = q.all("channel")
	if len(ps.channels) == 0 {
		return nil
	}
	for _, s := range q.all("since") {
		ch, pos, ok := parsePosition(s)
		if !ok {
			continue
		}
		if ps.since == nil {
			ps.since = map[string]hub.Position{}
		}
		ps.since[ch] = pos
	}
	return &ps
}

// sinceOf is the recovery position asked for ch, if any; ps may be nil.
func (ps *pendingSubs) sinceOf(ch string) (hub.Position, bool) {
	if ps == nil {
		return hub.Position{}, false
	}
	p, ok := ps.since[ch]
	return p, ok
}
