package auth

// Error is a reason why a connection is refused. Every error returned by
// [Verifier.Verify] and [Verifier.Anonymous] wraps exactly one of the Err*
// values below, so the server maps it with errors.As to an HTTP 401 whose
// body is [Error.Code]. Messages never contain key material.
type Error struct {
	// Code is a short, stable, machine-readable reason, e.g. "expired".
	Code string
	msg  string
}

// Error returns the human-readable reason.
func (e *Error) Error() string { return e.msg }

// The reasons a token or a connection is refused.
var (
	// ErrMissing: no token was presented and anonymous clients are not allowed.
	ErrMissing = &Error{Code: "missing", msg: "auth: no token"}
	// ErrMalformed: the token is not a well-formed JWT, or its claims have the wrong types.
	ErrMalformed = &Error{Code: "malformed", msg: "auth: malformed token"}
	// ErrWrongAlgorithm: the token's algorithm does not match any configured
	// key ("none" always lands here).
	ErrWrongAlgorithm = &Error{Code: "wrong_algorithm", msg: "auth: token algorithm not accepted"}
	// ErrBadSignature: the signature does not verify with any configured key.
	ErrBadSignature = &Error{Code: "bad_signature", msg: "auth: bad token signature"}
	// ErrExpired: exp is in the past, beyond the leeway.
	ErrExpired = &Error{Code: "expired", msg: "auth: token expired"}
	// ErrNotYetValid: nbf or iat is in the future, beyond the leeway.
	ErrNotYetValid = &Error{Code: "not_yet_valid", msg: "auth: token not valid yet"}
	// ErrWrongIssuer: iss differs from the configured issuer.
	ErrWrongIssuer = &Error{Code: "wrong_issuer", msg: "auth: wrong token issuer"}
	// ErrWrongAudience: aud does not contain the configured audience.
	ErrWrongAudience = &Error{Code: "wrong_audience", msg: "auth: wrong token audience"}
	// ErrInvalidClaims: a claim is invalid, e.g. a channel pattern that does
	// not compile or too many patterns.
	ErrInvalidClaims = &Error{Code: "invalid_claims", msg: "auth: invalid token claims"}
)
