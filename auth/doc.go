// Package auth decides who may connect to herald and what each connection
// may do.
//
// Start with [NewVerifier]: it checks the JWT a client presents on the
// upgrade request (query parameter token or "Authorization: Bearer") and
// returns [Claims], whose [Claims.CanSubscribe] and [Claims.CanPublish]
// answer per channel without allocating, and whose [Claims.TTL] tells the
// server when to close the connection with code 4001. [OriginPolicy] guards
// against cross-site WebSocket hijacking, and [IPLimiter] caps the
// connections one client address may hold. [Sign] mints tokens, for
// `herald gentoken` and for tests.
//
// Everything here runs on the event loops during the handshake, so nothing
// blocks and nothing reaches the network: keys are loaded up front
// ([Config.AddPublicKeyFile]), and verification is pure computation
// (BenchmarkVerify, one core of a small VM: 2 to 5 µs for HS256, 35 µs for
// RS256, 90 µs for ES256). A token verified before costs a lookup instead
// (some 150 ns, no allocation): the Verifier remembers the last tokens it
// accepted, see [Config.TokenCache].
//
// # Tokens
//
// A herald token is a JWT signed with HS256/384/512 (shared secret),
// RS256/384/512 or PS256/384/512 (RSA key) or ES256/384/512 (ECDSA key on
// P-256/P-384/P-521). Its claims:
//
//	sub       the user; grants the personal channel "user:<sub>" (subscribe only)
//	exp       expiry (optional); the connection is closed with 4001 when it passes
//	nbf, iat  checked when present, with the configured leeway
//	iss, aud  checked when the Config names an issuer or audience
//	channels  channel patterns the holder may subscribe to (string or array)
//	pub       channel patterns the holder may publish to (string or array)
//
// # Channel patterns
//
// A pattern is an exact channel name, or contains wildcards and the
// placeholder {sub}:
//
//	news          exactly "news"
//	*             any channel (outside the protected user: namespace, below)
//	chat:*        a trailing * matches one or more characters of any kind:
//	              "chat:a", "chat:a.b"; not "chat:"
//	news.*.live   an inner * is a whole segment and matches one or more
//	              characters other than the separators '.', ':' and '/'
//	private:{sub} {sub} is replaced by the token's subject, taken literally
//	              (a subject containing '*' is no wildcard); a pattern with
//	              {sub} grants nothing to a token without a subject
//
// An inner * that is not a whole segment (such as "a*b.c") makes the token
// invalid rather than silently matching less.
//
// The namespace "user:" is protected: a subject always may subscribe to its
// own personal channel "user:<sub>", and a pattern grants any other "user:"
// channel only when the pattern itself starts with "user:" (for instance
// "user:*" for a monitoring token). So "*" never lets one user read
// another's personal channel.
package auth
