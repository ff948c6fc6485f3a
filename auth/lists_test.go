package auth

import (
	"fmt"
	"testing"
	"time"
)

// TestSharedLists: the claims of two users whose tokens carry the same
// channel lists share them (strings and compiled patterns), grant the
// same channels, each its own personal channel; claims without lists
// share the empty rights; a list using {sub} is
// compiled for each user; past maxSharedLists, lists are compiled per
// token and still grant what they say.
func TestSharedLists(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: -1})
	claims := func(sub string, channels, pub []string) *Claims {
		t.Helper()
		c, err := v.Verify(mustSign(t, secret, TokenSpec{Subject: sub, Subscribe: channels, Publish: pub, ExpiresAt: testNow.Add(time.Hour)}))
		if err != nil {
			t.Fatalf("Verify for %s: %v", sub, err)
		}
		return c
	}
	channels, pub := []string{"news", "chat:*"}, []string{"chat:*"}
	alice, bob := claims("alice", channels, pub), claims("bob", channels, pub)
	if alice.rights != bob.rights || &alice.SubscribePatterns()[0] != &bob.SubscribePatterns()[0] {
		t.Fatal("two tokens with the same lists do not share them")
	}
	for _, c := range []*Claims{alice, bob} {
		if !c.CanSubscribe("news") || !c.CanSubscribe("chat:x") || c.CanSubscribe("other") ||
			!c.CanPublish("chat:x") || c.CanPublish("news") || !c.CanSubscribe("user:"+c.Subject) {
			t.Errorf("%s's shared lists grant the wrong channels", c.Subject)
		}
	}
	if alice.CanSubscribe("user:bob") || bob.CanSubscribe("user:alice") {
		t.Error("a shared list grants another user's personal channel")
	}
	// No lists at all: the one empty set of rights, nothing but the
	// personal channel.
	if carol := claims("carol", nil, nil); carol.rights != noRights || !carol.CanSubscribe("user:carol") || carol.CanSubscribe("news") || carol.CanPublish("user:carol") {
		t.Error("claims without lists do not share the empty rights, or grant more than the personal channel")
	}
	// {sub} compiles per subject: never shared.
	own := []string{"private:{sub}"}
	ca, cb := claims("alice", own, nil), claims("bob", own, nil)
	if !ca.CanSubscribe("private:alice") || ca.CanSubscribe("private:bob") || !cb.CanSubscribe("private:bob") || cb.CanSubscribe("private:alice") {
		t.Error("a {sub} list grants the wrong user's channel")
	}
	// Past the bound: compiled per token, and still right.
	for i := range 2 * maxSharedLists {
		ch := fmt.Sprintf("room%d", i)
		if c := claims("u", []string{ch}, nil); !c.CanSubscribe(ch) || c.CanSubscribe("room") {
			t.Fatalf("list %d grants the wrong channels", i)
		}
	}
	if n := v.lists.len(); n != maxSharedLists {
		t.Errorf("%d lists shared, want the bound, %d", n, maxSharedLists)
	}
}

// len is how many lists are shared.
func (l *sharedLists) len() int {
	if t := l.table.Load(); t != nil {
		return len(*t)
	}
	return 0
}
