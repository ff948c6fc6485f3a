package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"time"
)

// DefaultLeeway is the clock skew allowed on exp, nbf and iat when
// [Config.Leeway] is zero.
const DefaultLeeway = 30 * time.Second

// MinHMACSecret is the shortest HMAC secret accepted, in bytes: RFC 7518
// section 3.2 requires a key at least as long as the hash output (32 bytes
// for HS256); shorter secrets can be brute-forced from one token.
const MinHMACSecret = 32

// MinRSABits is the smallest RSA modulus accepted, for verifying and signing.
const MinRSABits = 2048

// Config configures a [Verifier]. At least one key, or AllowAnonymous, must
// be set. A Config is read only by [NewVerifier], which copies what it keeps.
type Config struct {
	// HMACSecret enables HS256, HS384 and HS512 with this shared secret, at
	// least MinHMACSecret bytes long. Anyone holding it can mint tokens.
	HMACSecret []byte
	// RSAPublicKeys enable RS256/384/512 and PS256/384/512; a token is
	// accepted when any key verifies it. Keys under MinRSABits are refused.
	RSAPublicKeys []*rsa.PublicKey
	// ECDSAPublicKeys enable ES256 (P-256 keys), ES384 (P-384) and ES512
	// (P-521); each algorithm is tried only with keys of its curve.
	ECDSAPublicKeys []*ecdsa.PublicKey

	// Issuer, when set, must equal the token's "iss".
	Issuer string
	// Audience, when set, must be among the token's "aud".
	Audience string
	// Leeway is the clock skew allowed on exp, nbf and iat: 0 means
	// DefaultLeeway (30 s), a negative value means none. It also extends
	// [Claims.TTL].
	Leeway time.Duration

	// AllowAnonymous lets clients without a token connect with the claims
	// of [Verifier.Anonymous]: no subject, hence no personal channel, and
	// the two pattern lists below.
	AllowAnonymous bool
	// AnonymousSubscribe lists the channel patterns anonymous clients may
	// subscribe to ("*" grants every channel outside the protected user:
	// namespace). Nil or empty means none: an anonymous client may
	// connect but subscribe to nothing.
	AnonymousSubscribe []string
	// AnonymousPublish lists the channel patterns anonymous clients may
	// publish to. Nil or empty means none, the safe default: anonymous
	// publishing is meant for demos (for instance "demo:*"), never for a
	// channel real users read.
	AnonymousPublish []string

	// TokenCache is how many verified tokens the Verifier remembers, so
	// that a client presenting the same token again (a reconnect after a
	// blip, another tab, a reload) gets the same Claims back at the cost
	// of a map lookup instead of a signature check (2 to 5 µs for HS256,
	// 35 to 80 µs for RS256, 90 to 180 µs for ES256) and the claims'
	// allocations. 0 means DefaultTokenCache (4096), a negative value
	// turns the cache off.
	//
	// Only tokens Verify accepted are kept (a refusal never is), only
	// from the second time they pass the full check (a token presented
	// once, as in a storm of new users, costs the cache no copy and
	// evicts nothing), and only those up to 1 KiB whose claims take up
	// to about 3 KiB (patterns compiled), so the cache holds at most
	// about TokenCache × 4.2 KiB: 17 MiB at the default, some 1 KiB a
	// token for everyday ones, plus 16 bytes a token for the hashes of
	// those checked once. A
	// kept token is looked up by all its bytes, so any other token
	// misses, and its expiry is checked again on every hit, so it is
	// refused with ErrExpired once exp plus the leeway has passed. The
	// least recently presented tokens make room for new ones.
	TokenCache int
}

// tokenCache returns the effective cache size, 0 for none.
func (c *Config) tokenCache() int {
	switch {
	case c.TokenCache == 0:
		return DefaultTokenCache
	case c.TokenCache < 0:
		return 0
	}
	return c.TokenCache
}

// leeway returns the effective leeway.
func (c *Config) leeway() time.Duration {
	switch {
	case c.Leeway == 0:
		return DefaultLeeway
	case c.Leeway < 0:
		return 0
	}
	return c.Leeway
}
