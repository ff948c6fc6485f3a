package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/auth"
)

// secretEnv names the environment variable holding the HMAC secret, the
// same one `herald serve` reads, so that a shell with it set can mint tokens
// the server accepts without the secret showing in the process list.
const secretEnv = "HERALD_JWT_SECRET"

// gentokenOptions are the flags of `herald gentoken`.
type gentokenOptions struct {
	secret    string
	keyPath   string
	subject   string
	ttl       time.Duration
	subscribe []string
	publish   []string
	issuer    string
	audience  []string
}

// newGentokenCmd returns `herald gentoken`: it mints a connection token
// signed with the shared secret or a private key, for development, tests
// and backends that have no JWT library at hand.
func newGentokenCmd() *cobra.Command {
	var o gentokenOptions
	cmd := &cobra.Command{
		Use:   "gentoken",
		Short: "print a signed connection token (JWT) for a user and its channels",
		Long: "gentoken prints a JWT that herald serve accepts. It is signed with HS256 and the shared secret\n" +
			"(--secret, or " + secretEnv + " when the flag is absent, which keeps the secret out of the\n" +
			"process list), or with a PEM private key (--key): RS256 for RSA, ES256/ES384/ES512 for ECDSA by curve.\n" +
			"--channel and --publish take channel patterns: exact names, * wildcards (news.*, chat:*, *)\n" +
			"and {sub} for the token's subject (private:{sub}).",
		Example: "  HERALD_JWT_SECRET=$(cat secret) herald gentoken --sub alice --channel 'news.*' --publish 'chat:*'\n" +
			"  herald gentoken --key ec-private.pem --sub bob --ttl 15m --channel 'private:{sub}'",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("secret") {
				o.secret = os.Getenv(secretEnv)
			}
			tok, err := o.token(time.Now())
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.secret, "secret", "", "HMAC secret, at least 32 bytes (default $"+secretEnv+")")
	f.StringVar(&o.keyPath, "key", "", "PEM file with an RSA or ECDSA private key (instead of a secret)")
	f.StringVar(&o.subject, "sub", "", "subject: the user; its personal channel is user:<sub>")
	f.DurationVar(&o.ttl, "ttl", time.Hour, "lifetime of the token (0: never expires)")
	f.StringArrayVar(&o.subscribe, "channel", nil, "channel pattern the holder may subscribe to (repeatable)")
	f.StringArrayVar(&o.publish, "publish", nil, "channel pattern the holder may publish to (repeatable)")
	f.StringVar(&o.issuer, "issuer", "", "issuer (iss), for servers run with --jwt-issuer")
	f.StringArrayVar(&o.audience, "audience", nil, "audience (aud), for servers run with --jwt-audience (repeatable)")
	return cmd
}

// token mints the token the options describe, issued at now.
func (o *gentokenOptions) token(now time.Time) (string, error) {
	var key any
	switch {
	case o.keyPath != "" && o.secret != "":
		return "", errors.New("gentoken: give either a secret or --key, not both")
	case o.keyPath != "":
		data, err := os.ReadFile(o.keyPath)
		if err != nil {
			return "", fmt.Errorf("gentoken: read key: %w", err)
		}
		if key, err = auth.ParsePrivateKeyPEM(data); err != nil {
			return "", fmt.Errorf("gentoken: %s: %w", o.keyPath, err)
		}
	case o.secret != "":
		key = []byte(o.secret)
	default:
		return "", errors.New("gentoken: no key: give --secret, set " + secretEnv + ", or give --key")
	}
	if o.ttl < 0 {
		return "", fmt.Errorf("gentoken: --ttl %v is negative", o.ttl)
	}
	spec := auth.TokenSpec{
		Subject:   o.subject,
		Subscribe: o.subscribe,
		Publish:   o.publish,
		Issuer:    o.issuer,
		Audience:  o.audience,
		IssuedAt:  now,
	}
	if o.ttl > 0 {
		spec.ExpiresAt = now.Add(o.ttl)
	}
	// Refuse patterns the server would refuse, rather than mint a dead token.
	if _, err := auth.NewClaims(o.subject, o.subscribe, o.publish); err != nil {
		return "", fmt.Errorf("gentoken: %w", err)
	}
	tok, err := auth.Sign(key, spec)
	if err != nil {
		return "", fmt.Errorf("gentoken: %w", err)
	}
	return tok, nil
}
