package hook

import (
	"net/http"
	"net/textproto"

	"github.com/herald-push/herald/codec"
)

// Forwarded picks from an upgrade request the header fields and cookies
// the configuration allows (Config.Headers, Config.Cookies): what
// Request.Headers and Request.Cookies carry. Nothing else of the request
// reaches the backend. The maps are nil when nothing matched.
func (c *Client) Forwarded(req *codec.Request) (headers, cookies map[string]string) {
	for _, name := range c.cfg.Headers {
		if v := req.Field(name); v != "" {
			if headers == nil {
				headers = map[string]string{}
			}
			headers[textproto.CanonicalMIMEHeaderKey(name)] = v
		}
	}
	if len(c.cfg.Cookies) == 0 {
		return headers, nil
	}
	raw := req.Field("Cookie")
	if raw == "" {
		return headers, nil
	}
	// http.Request's reading of the field skips malformed cookies and
	// keeps the rest, as a browser-facing server must.
	hr := http.Request{Header: http.Header{"Cookie": {raw}}}
	for _, want := range c.cfg.Cookies {
		if ck, err := hr.Cookie(want); err == nil {
			if cookies == nil {
				cookies = map[string]string{}
			}
			cookies[want] = ck.Value
		}
	}
	return headers, cookies
}
