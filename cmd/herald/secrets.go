package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/pusher"
)

// secretFlags maps each flag that carries a secret to the safer ways of
// giving it.
var secretFlags = map[string]string{
	"api-key":       "--api-key-file or HERALD_API_KEY",
	"jwt-secret":    "--jwt-secret-file or HERALD_JWT_SECRET",
	"pusher-secret": "--pusher-secret-file or HERALD_PUSHER_SECRET",
}

// givenSecretFlags lists the secret-carrying flags given on the command
// line (sorted), where every local user can read them in ps.
func givenSecretFlags(fs *pflag.FlagSet) []string {
	var given []string
	fs.Visit(func(f *pflag.Flag) {
		if _, ok := secretFlags[f.Name]; ok {
			given = append(given, f.Name)
		}
	})
	return given
}

// readSecretFiles fills APIKey and JWTSecret from APIKeyFile and
// JWTSecretFile when those are set.
func readSecretFiles(o *serveOptions) error {
	if err := readSecretFile(&o.APIKey, o.APIKeyFile, "api_key"); err != nil {
		return err
	}
	if err := readSecretFile(&o.JWTSecret, o.JWTSecretFile, "jwt_secret"); err != nil {
		return err
	}
	if err := readSecretFile(&o.PusherSecret, o.PusherSecretFile, "pusher_secret"); err != nil {
		return err
	}
	return addPusherApp(o)
}

// addPusherApp appends the app of the --pusher-* flags to Config.Pusher.
func addPusherApp(o *serveOptions) error {
	if o.PusherAppID == "" && o.PusherKey == "" && o.PusherSecret == "" {
		if len(o.PusherWebhooks) > 0 {
			return fmt.Errorf("--pusher-webhook needs the app of --pusher-app-id, --pusher-key and a secret")
		}
		return nil
	}
	if o.PusherAppID == "" || o.PusherKey == "" || o.PusherSecret == "" {
		return fmt.Errorf("a Pusher app needs --pusher-app-id, --pusher-key and a secret (--pusher-secret-file or HERALD_PUSHER_SECRET)")
	}
	o.Pusher = append(o.Pusher, pusher.App{ID: o.PusherAppID, Key: o.PusherKey, Secret: o.PusherSecret, Webhooks: o.PusherWebhooks})
	o.PusherSecret = ""
	return nil
}

// readSecretFile sets *dst to the first line of path (surrounding blanks
// trimmed). Giving both the secret and its file is an error.
func readSecretFile(dst *string, path, name string) error {
	if path == "" {
		return nil
	}
	if *dst != "" {
		return fmt.Errorf("%s is set both directly and with %s_file %s: keep one", name, name, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s_file: %w", name, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	secret := strings.TrimSpace(line)
	if secret == "" {
		return fmt.Errorf("%s_file %s: the first line is empty", name, path)
	}
	*dst = secret
	return nil
}

// redacted is o as --print-config shows it: secrets replaced by "(set)",
// credentials in the broker URLs removed.
func redacted(o serveOptions) serveOptions {
	if o.JWTSecret != "" {
		o.JWTSecret = "(set)"
	}
	if o.APIKey != "" {
		o.APIKey = "(set)"
	}
	o.Broker = redactURLs(o.Broker)
	apps := make([]pusher.App, len(o.Pusher))
	for i, a := range o.Pusher {
		a.Secret = "(set)"
		if a.Webhooks != nil {
			hooks := make([]string, len(a.Webhooks))
			for k, u := range a.Webhooks {
				hooks[k] = redactURLs(u)
			}
			a.Webhooks = hooks
		}
		apps[i] = a
	}
	if o.Pusher != nil {
		o.Pusher = apps
	}
	return o
}

// redactURLs replaces the user information (user, password or token) of
// each comma-separated URL in list with "redacted".
func redactURLs(list string) string {
	if !strings.Contains(list, "@") {
		return list
	}
	parts := strings.Split(list, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL, redacted)"
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// warnExposure logs a warning for each secret given as a flag and for each
// setting that lets strangers in.
func warnExposure(log *slog.Logger, o serveOptions, given []string) {
	for _, name := range given {
		log.Warn("a secret was given as a command-line flag, which every local user can read (ps, /proc)",
			"flag", "--"+name, "instead", secretFlags[name])
	}
	if o.AllowAnonymous {
		log.Warn("anonymous clients are allowed (--allow-anonymous): anyone who can reach the WebSocket port can connect",
			"subscribe", o.AnonymousSubscribe, "publish", o.AnonymousPublishPatterns())
	}
	if o.APIListen != "" && o.APIKey == "" && !herald.IsLoopback(o.APIListen) {
		log.Warn("the API listener is open to the network without a key (--api-insecure): anyone who reaches it can publish and disconnect users",
			"api_listen", o.APIListen)
	}
}
