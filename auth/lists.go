package auth

import (
	"strings"
	"sync"
	"sync/atomic"
)

// maxSharedLists bounds the channel lists a Verifier shares between the
// claims of its tokens: an issuer's tokens carry a handful of distinct
// lists (one per role, say), and only tokens signed with the node's keys
// reach the table, so no client can grow it; a list past the bound is
// compiled for its own claims, as every list was before.
const maxSharedLists = 64

// maxListKey bounds the key of a shared list (its strings, joined): a
// longer list is compiled for its own claims.
const maxListKey = 512

// sharedLists are the channel lists (a token's channels or pub claim) of
// the tokens a Verifier accepted, compiled once and shared by every Claims
// whose token carries the same list: in a storm of new users holding the
// same rights, a user's claims then cost no copy of the list's strings
// and no compiled patterns of their own. Only lists without {sub} are
// shared, since those compile alike for every subject. Lookups take no
// lock and write nothing: the table is a map replaced whole, under mu,
// when a list is added.
type sharedLists struct {
	table atomic.Pointer[map[string]sharedList]
	mu    sync.Mutex // serializes additions
}

// sharedList is one shared channel list: its strings (what Claims.Subscribe
// or Claims.Publish holds) and its compiled patterns.
type sharedList struct {
	src []string
	ps  []pattern
}

// listKey appends list's strings (spans of b) to key, each followed by a
// NUL, which decodeClaims never lets into a string; false when the list
// is empty, uses {sub}, or the key would pass maxListKey.
func listKey(key, b []byte, list []span) ([]byte, bool) {
	if len(list) == 0 {
		return key, false
	}
	for _, s := range list {
		text := s.in(b)
		if len(key)+len(text)+1 > maxListKey || strings.Contains(text, subPlaceholder) {
			return key, false
		}
		key = append(key, text...)
		key = append(key, 0)
	}
	return key, true
}

// lookup returns the shared list whose key is key.
func (l *sharedLists) lookup(key []byte) (sharedList, bool) {
	t := l.table.Load()
	if t == nil {
		return sharedList{}, false
	}
	sl, ok := (*t)[string(key)] // no allocation: the conversion is the map's
	return sl, ok
}

// add shares src, compiled as ps, under key, unless the table is full or
// holds key already. src must not change afterwards (a Claims' list).
func (l *sharedLists) add(key []byte, src []string, ps []pattern) {
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
	t := make(map[string]sharedList, n+1)
	if old != nil {
		for k, sl := range *old {
			t[k] = sl
		}
	}
	t[string(key)] = sharedList{src: src, ps: ps}
	l.table.Store(&t)
}
