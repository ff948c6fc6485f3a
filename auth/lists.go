package auth

import (
	"strings"
	"sync"
	"sync/atomic"
)

// maxSharedLists bounds the pairs of channel lists a Verifier shares
// between the claims of its tokens: an issuer's tokens carry a handful of
// distinct lists (one per role, say), and only tokens signed with the
// node's keys reach the table, so no client can grow it; lists past the
// bound are compiled for their own claims, as every list was before.
const maxSharedLists = 64

// maxListKey bounds the key of a shared pair of lists (their strings,
// joined): longer lists are compiled for their own claims.
const maxListKey = 512

// sharedLists are the channel lists (a token's channels and pub claims)
// of the tokens a Verifier accepted, compiled once and shared by every
// Claims whose token carries the same two lists: in a storm of new users
// holding the same rights, a user's claims then cost no copy of the
// lists' strings and no compiled patterns of their own. Only lists
// without {sub} are shared, since those compile alike for every subject.
// Lookups take no lock and write nothing: the table is a map replaced
// whole, under mu, when a pair of lists is added.
type sharedLists struct {
	table atomic.Pointer[map[string]*rights]
	mu    sync.Mutex // serializes additions
}

// listsKey appends the key of a token's two lists (spans of b) to key:
// the number of strings of the first, then every string of both, each
// followed by a NUL, which decodeClaims never lets into a string. False
// when both lists are empty, either uses {sub} or is longer than a byte
// can count, or the key would pass maxListKey.
func listsKey(key, b []byte, subscribe, publish []span) ([]byte, bool) {
	if len(subscribe)+len(publish) == 0 || len(subscribe) > 255 {
		return key, false
	}
	key = append(key, byte(len(subscribe)))
	for _, list := range [...][]span{subscribe, publish} {
		for _, s := range list {
			text := s.in(b)
			if len(key)+len(text)+1 > maxListKey || strings.Contains(text, subPlaceholder) {
				return key, false
			}
			key = append(key, text...)
			key = append(key, 0)
		}
	}
	return key, true
}

// lookup returns the shared lists, compiled, whose key is key.
func (l *sharedLists) lookup(key []byte) (*rights, bool) {
	t := l.table.Load()
	if t == nil {
		return nil, false
	}
	r, ok := (*t)[string(key)] // no allocation: the conversion is the map's
	return r, ok
}

// add shares r, a token's lists compiled, under key, unless the table is
// full or holds key already.
func (l *sharedLists) add(key []byte, r *rights) {
	l.mu.Lock()
	defer l.mu.Unlock()
	old := l.table.Load()
	n := 0
	if old != nil {
		if _, ok := (*old)[string(key)]; ok {
			return
		}
		n = len(*old)
	}
	if n >= maxSharedLists {
		return
	}
	t := make(map[string]*rights, n+1)
	if old != nil {
		for k, have := range *old {
			t[k] = have
		}
	}
	t[string(key)] = r
	l.table.Store(&t)
}
