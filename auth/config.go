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
