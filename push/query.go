package push

import (
	"net/url"
	"strings"

	"github.com/herald-push/herald/hub"
)

// query is a raw URL query, read in order with its repeats. It is parsed
// on each look-up rather than into a slice: an upgrade asks for a handful
// of keys, and a parse would allocate on every handshake.
type query string

// parseQuery returns raw as a query; bad escapes keep the raw text.
func parseQuery(raw string) query { return query(raw) }

// each calls fn with every key, unescaped, and its value as sent (the
// caller unescapes the values it uses), in order, until fn returns
// false.
func (q query) each(fn func(k, rawV string) bool) {
	raw := string(q)
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if !fn(unescape(k), v) {
			return
		}
	}
}

// unescape decodes a query component; it allocates only when s holds an
// escape ('%' or '+').
func unescape(s string) string {
	// Two byte searches rather than ContainsAny: they run vectorised over
	// a long value (a token) where ContainsAny goes byte by byte.
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s
	}
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

func (q query) first(k string) string {
	var out string
	q.each(func(key, v string) bool {
		if key == k {
			out = unescape(v)
			return false
		}
		return true
	})
	return out
}

func (q query) all(k string) []string {
	var out []string
	q.each(func(key, v string) bool {
		if key == k {
			out = append(out, unescape(v))
		}
		return true
	})
	return out
}

// count is how many times k appears.
func (q query) count(k string) int {
	n := 0
	q.each(func(key, _ string) bool {
		if key == k {
			n++
		}
		return true
	})
	return n
}

// upgradeQuery is what an upgrade reads of its URL, found in one pass:
// the first value (unescaped) of each key it takes once, and how many
// channel= and since= there are.
type upgradeQuery struct {
	q                               query
	token, format, channel, lastEID string
	channels, sinces                int
}

// scan reads q's keys of an upgrade in one pass.
func (q query) scan() upgradeQuery {
	u := upgradeQuery{q: q}
	var seen uint8
	first := func(bit uint8, dst *string, v string) {
		if seen&bit == 0 {
			seen |= bit
			*dst = unescape(v)
		}
	}
	q.each(func(k, v string) bool {
		switch k {
		case "channel":
			first(1, &u.channel, v)
			u.channels++
		case "since":
			u.sinces++
		case "token":
			first(2, &u.token, v)
		case "format":
			first(4, &u.format, v)
		case "lastEventId":
			first(8, &u.lastEID, v)
		}
		return true
	})
	return u
}

// pending is query.pending without a second pass for the common URL: one
// channel and no since.
func (u *upgradeQuery) pending(po *pendingOne) *pendingSubs {
	if u.channels == 1 && u.sinces == 0 {
		*po = pendingOne{}
		po.one[0] = u.channel
		po.ps.channels = po.one[:]
		return &po.ps
	}
	if u.channels == 0 {
		return nil
	}
	return u.q.pending(po)
}

// pendingOne is the pendingSubs of a URL with one channel, allocated
// with that channel's slice in one object.
type pendingOne struct {
	ps  pendingSubs
	one [1]string
}

// pending returns the subscriptions the upgrade URL asks for: every
// channel= and, for those with a since=channel:offset:epoch, where to
// recover from (malformed since values are ignored). Nil when there are
// none. A URL with one channel and no since fills po, which it reuses,
// and allocates nothing; the strings are views of q.
func (q query) pending(po *pendingOne) *pendingSubs {
	var ps *pendingSubs
	switch n := q.count("channel"); n {
	case 0:
		return nil
	case 1:
		*po = pendingOne{}
		po.one[0] = q.first("channel")
		po.ps.channels = po.one[:]
		ps = &po.ps
	default:
		ps = &pendingSubs{channels: q.all("channel")}
	}
	q.each(func(k, v string) bool {
		if k != "since" {
			return true
		}
		ch, pos, ok := parsePosition(unescape(v))
		if !ok {
			return true
		}
		if ps.since == nil {
			ps.since = map[string]hub.Position{}
		}
		ps.since[ch] = pos
		return true
	})
	return ps
}

// clone is a copy of ps that owns its strings, for a use that outlives the
// upgrade request they point into (a deferred upgrade); nil for nil.
func (ps *pendingSubs) clone() *pendingSubs {
	if ps == nil {
		return nil
	}
	c := &pendingSubs{channels: make([]string, len(ps.channels))}
	for i, ch := range ps.channels {
		c.channels[i] = strings.Clone(ch)
	}
	if ps.since != nil {
		c.since = make(map[string]hub.Position, len(ps.since))
		for ch, p := range ps.since {
			c.since[strings.Clone(ch)] = ownPosition(p)
		}
	}
	return c
}

// ownPosition is p with an epoch string of its own.
func ownPosition(p hub.Position) hub.Position {
	return hub.Position{Offset: p.Offset, Epoch: strings.Clone(p.Epoch)}
}

// at is the recovery position asked for ch, a copy of its own, or nil;
// ps may be nil. Only a position found is allocated.
func (ps *pendingSubs) at(ch string) *hub.Position {
	p, ok := ps.sinceOf(ch)
	if !ok {
		return nil
	}
	np := new(hub.Position)
	*np = ownPosition(p)
	return np
}

// sinceOf is the recovery position asked for ch, if any; ps may be nil.
func (ps *pendingSubs) sinceOf(ch string) (hub.Position, bool) {
	if ps == nil {
		return hub.Position{}, false
	}
	p, ok := ps.since[ch]
	return p, ok
}
