package auth

import (
	"fmt"
	"time"
)

// Claims is what a connection may do, from its verified token or from the
// anonymous defaults. Claims returned by this package are immutable and safe
// for concurrent use; their patterns are compiled once, so the Can* methods
// do not allocate. They are shared: [Verifier.Verify] returns the same
// Claims for every connection presenting the same token while it remembers
// it, as [Verifier.Anonymous] does for every anonymous one, and the claims
// of tokens carrying the same channel lists share those lists, compiled
// (SubscribePatterns and PublishPatterns return them: not to be
// modified). Changing the exported fields of such a Claims does not
// change what it grants, and would change them for its other holders:
// copy it, or build a new one with [NewClaims].
type Claims struct {
	// Subject is the token's "sub": the user. Empty for anonymous clients
	// and for tokens without a subject.
	Subject string
	// ExpiresAt is the token's "exp"; zero means no expiry.
	ExpiresAt time.Time
	// Anonymous is true for claims from [Verifier.Anonymous].
	Anonymous bool

	personal string // "user:<sub>", or empty without a subject
	// rights are the channel lists, compiled: shared by the claims of
	// every token of the same lists (sharedLists); nil in a Claims built
	// by hand, which grants nothing but its personal channel.
	rights *rights
	leeway time.Duration
}

// rights are a Claims' channel lists and their compiled patterns: sub of
// subscribe (the "channels" claim), pub of publish (the "pub" claim).
// Never changed once compiled, so shared freely; a Claims lives with each
// of its connections, so what its users have in common is kept here,
// once.
type rights struct {
	subscribe, publish []string
	sub, pub           []pattern
}

// noRights are the rights of every Claims without a channel pattern (a
// token that only names its user, say): compiled once, never changed.
var noRights = &rights{sub: []pattern{}, pub: []pattern{}}

// compileRights compiles subscribe and publish for subject; the result
// keeps both lists, which must not change afterwards.
func compileRights(subscribe, publish []string, subject string) (*rights, error) {
	if len(subscribe)+len(publish) == 0 {
		return noRights, nil
	}
	sub, err := compilePatterns(subscribe, subject)
	if err != nil {
		return nil, fmt.Errorf("auth: subscribe patterns: %w", err)
	}
	pub, err := compilePatterns(publish, subject)
	if err != nil {
		return nil, fmt.Errorf("auth: publish patterns: %w", err)
	}
	return &rights{subscribe: subscribe, publish: publish, sub: sub, pub: pub}, nil
}

// NewClaims compiles claims for subject with the given subscribe and publish
// patterns (see the package doc for their grammar), without a token: for
// tests and for embedding herald with another way to authenticate. The
// result keeps both lists, which the caller must not change afterwards, and
// has no expiry; set ExpiresAt on it before sharing it if needed.
func NewClaims(subject string, subscribe, publish []string) (*Claims, error) {
	c := &Claims{Subject: subject}
	if err := c.compile(subscribe, publish); err != nil {
		return nil, err
	}
	return c, nil
}

// compile fills the unexported, precompiled fields that are not filled
// yet: the rights of subscribe and publish (claimsOfRaw may have set
// shared ones), and the personal channel.
func (c *Claims) compile(subscribe, publish []string) error {
	if c.rights == nil {
		r, err := compileRights(subscribe, publish, c.Subject)
		if err != nil {
			return err
		}
		c.rights = r
	}
	if c.personal == "" {
		c.personal = PersonalChannelOf(c.Subject)
	}
	return nil
}

// compileToken is compile for a token's claims: what fails is the token's
// (ErrInvalidClaims).
func (c *Claims) compileToken(subscribe, publish []string) error {
	if err := c.compile(subscribe, publish); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	return nil
}

// SubscribePatterns returns the channel patterns of the "channels" claim
// (nil for a nil Claims). The slice is shared: the caller must not modify
// it.
func (c *Claims) SubscribePatterns() []string {
	if c == nil || c.rights == nil {
		return nil
	}
	return c.rights.subscribe
}

// PublishPatterns returns the channel patterns of the "pub" claim (nil
// for a nil Claims). The slice is shared: the caller must not modify it.
func (c *Claims) PublishPatterns() []string {
	if c == nil || c.rights == nil {
		return nil
	}
	return c.rights.publish
}

// PersonalChannel returns "user:<sub>", the channel every connection of
// this subject is subscribed to automatically, or "" without a subject.
func (c *Claims) PersonalChannel() string {
	if c == nil {
		return ""
	}
	return c.personal
}

// PersonalChannelOf returns "user:<subject>", the personal channel of
// subject's connections, or "" for an empty subject.
func PersonalChannelOf(subject string) string {
	if subject == "" {
		return ""
	}
	return userPrefix + subject
}

// CanSubscribe reports whether the holder may subscribe to channel: its own
// personal channel always, anything else when a subscribe pattern grants
// it (see the package doc for the protected user: namespace). A nil Claims
// may subscribe to nothing. It does not allocate.
func (c *Claims) CanSubscribe(channel string) bool {
	if c == nil || channel == "" {
		return false
	}
	if c.personal != "" && channel == c.personal {
		return true
	}
	return c.rights != nil && matchAny(c.rights.sub, channel)
}

// CanPublish reports whether the holder may publish to channel: only when a
// publish pattern grants it (the personal channel included: a user does not
// publish to itself by default). A nil Claims may publish nowhere. It does
// not allocate.
func (c *Claims) CanPublish(channel string) bool {
	if c == nil || c.rights == nil {
		return false
	}
	return matchAny(c.rights.pub, channel)
}

// TTL returns how long the connection may stay open from now: the time
// until ExpiresAt plus the verifier's leeway (so a token accepted within
// the leeway is not closed at once), and true; or 0 and false when the
// claims never expire. A result <= 0 means the connection should be closed
// now with code 4001 ("token expired").
func (c *Claims) TTL(now time.Time) (time.Duration, bool) {
	if c == nil || c.ExpiresAt.IsZero() {
		return 0, false
	}
	return c.ExpiresAt.Add(c.leeway).Sub(now), true
}

// expiredAt reports whether a token that expires at exp (zero: never) has
// expired by now, leeway allowed: jwt/v5's rule (now not before exp +
// leeway), which the HS256 fast path mirrors (validTimes) and a cached
// token's every hit repeats. nbf and iat are lower bounds, passed at
// insertion, and time only moves past them (a wall clock stepped back is
// not re-checked: the token was valid at a time this node already
// believed); iss, aud and the keys are the Verifier's configuration,
// which never changes: so expiry is the only check a hit repeats.
func expiredAt(exp time.Time, leeway time.Duration, now time.Time) bool {
	return !exp.IsZero() && !now.Before(exp.Add(leeway))
}
