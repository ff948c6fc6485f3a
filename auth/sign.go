package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenSpec describes a token to mint with [Sign].
type TokenSpec struct {
	// Subject is "sub": the user, whose personal channel is "user:<sub>".
	Subject string
	// Subscribe becomes the "channels" claim: patterns the holder may subscribe to.
	Subscribe []string
	// Publish becomes the "pub" claim: patterns the holder may publish to.
	Publish []string
	// Issuer ("iss") and Audience ("aud") are written when set.
	Issuer   string
	Audience []string
	// IssuedAt ("iat"), NotBefore ("nbf") and ExpiresAt ("exp") are written
	// when not zero.
	IssuedAt, NotBefore, ExpiresAt time.Time
}

// Sign returns a signed token for spec. The algorithm follows the key:
// a []byte secret (at least MinHMACSecret bytes) gives HS256, an
// *rsa.PrivateKey RS256, an *ecdsa.PrivateKey ES256, ES384 or ES512 by its
// curve. It is safe for concurrent use.
func Sign(key any, spec TokenSpec) (string, error) {
	var method jwt.SigningMethod
	switch k := key.(type) {
	case []byte:
		if len(k) < MinHMACSecret {
			return "", fmt.Errorf("auth: sign: HMAC secret is %d bytes, want at least %d", len(k), MinHMACSecret)
		}
		method = jwt.SigningMethodHS256
	case *rsa.PrivateKey:
		if k.N.BitLen() < MinRSABits {
			return "", fmt.Errorf("auth: sign: RSA key has %d bits, want at least %d", k.N.BitLen(), MinRSABits)
		}
		method = jwt.SigningMethodRS256
	case *ecdsa.PrivateKey:
		alg, err := ecdsaAlg(&k.PublicKey)
		if err != nil {
			return "", fmt.Errorf("auth: sign: %w", err)
		}
		method = jwt.GetSigningMethod(alg)
	case nil:
		return "", errors.New("auth: sign: no key")
	default:
		return "", fmt.Errorf("auth: sign: unsupported key type %T (want []byte, *rsa.PrivateKey or *ecdsa.PrivateKey)", key)
	}
	wc := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   spec.Subject,
			Issuer:    spec.Issuer,
			Audience:  spec.Audience,
			IssuedAt:  numericDate(spec.IssuedAt),
			NotBefore: numericDate(spec.NotBefore),
			ExpiresAt: numericDate(spec.ExpiresAt),
		},
		Channels: spec.Subscribe,
		Pub:      spec.Publish,
	}
	s, err := jwt.NewWithClaims(method, wc).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("auth: sign: %w", err)
	}
	return s, nil
}

// numericDate returns nil for the zero time, so the claim is left out.
func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t)
}
