package push

import (
	"net/url"
	"strconv"
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
		// channel:offset:epoch; the channel may itself contain ':'.
		i := strings.LastIndexByte(s, ':')
		if i <= 0 {
			continue
		}
		j := strings.LastIndexByte(s[:i], ':')
		if j <= 0 {
			continue
		}
		off, err := strconv.ParseUint(s[j+1:i], 10, 64)
		if err != nil {
			continue
		}
		if ps.since == nil {
			ps.since = map[string]hub.Position{}
		}
		ps.since[s[:j]] = hub.Position{Offset: off, Epoch: s[i+1:]}
	}
	return &ps
}
