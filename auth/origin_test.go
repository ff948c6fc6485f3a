package auth

import (
	"strings"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	listed := []string{"https://app.example.com", "https://*.example.org", "http://localhost:*", "http://dev.test:3000", "HTTPS://Upper.Example.NET"}
	tests := []struct {
		name    string
		allowed []string // nil: the default policy (a nil *OriginPolicy)
		origin  string
		host    string
		want    bool
	}{
		{name: "no origin", origin: "", host: "herald.example.com", want: true},
		{name: "same host", origin: "https://herald.example.com", host: "herald.example.com", want: true},
		{name: "same host other port", origin: "http://localhost:8081", host: "localhost:8080", want: true},
		{name: "same host case", origin: "https://Herald.Example.com", host: "herald.EXAMPLE.com:443", want: true},
		{name: "same host ipv6", origin: "http://[::1]:8081", host: "[::1]:8080", want: true},
		{name: "other host refused", origin: "https://evil.example", host: "herald.example.com"},
		{name: "suffix of host refused", origin: "https://evilherald.example.com", host: "herald.example.com"},
		{name: "null refused", origin: "null", host: "herald.example.com"},
		{name: "garbage refused", origin: "not an origin", host: "herald.example.com"},
		{name: "path refused", origin: "https://herald.example.com/x", host: "herald.example.com"},
		{name: "userinfo refused", origin: "https://herald.example.com@evil.example", host: "herald.example.com"},
		{name: "listed exact", allowed: listed, origin: "https://app.example.com", host: "herald:8080", want: true},
		{name: "listed default port", allowed: listed, origin: "https://app.example.com:443", host: "herald:8080", want: true},
		{name: "listed other port", allowed: listed, origin: "https://app.example.com:8443", host: "herald:8080"},
		{name: "listed scheme mismatch", allowed: listed, origin: "http://app.example.com", host: "herald:8080"},
		{name: "listed case", allowed: listed, origin: "https://upper.example.net", host: "herald:8080", want: true},
		{name: "wildcard subdomain", allowed: listed, origin: "https://a.example.org", host: "herald:8080", want: true},
		{name: "wildcard deep subdomain", allowed: listed, origin: "https://a.b.example.org", host: "herald:8080", want: true},
		{name: "wildcard not bare domain", allowed: listed, origin: "https://example.org", host: "herald:8080"},
		{name: "wildcard not lookalike", allowed: listed, origin: "https://evilexample.org", host: "herald:8080"},
		{name: "wildcard scheme mismatch", allowed: listed, origin: "http://a.example.org", host: "herald:8080"},
		{name: "port wildcard", allowed: listed, origin: "http://localhost:5173", host: "herald:8080", want: true},
		{name: "port wildcard no port", allowed: listed, origin: "http://localhost", host: "herald:8080", want: true},
		{name: "port wildcard scheme mismatch", allowed: listed, origin: "https://localhost:5173", host: "herald:8080"},
		{name: "fixed port", allowed: listed, origin: "http://dev.test:3000", host: "herald:8080", want: true},
		{name: "fixed port differs", allowed: listed, origin: "http://dev.test:3001", host: "herald:8080"},
		{name: "listed null refused", allowed: listed, origin: "null", host: "herald:8080"},
		{name: "origin star port refused", allowed: listed, origin: "http://localhost:*", host: "herald:8080"},
		{name: "empty list is default", allowed: []string{}, origin: "https://evil.example", host: "herald:8080"},
		{name: "star allows any", allowed: []string{"*"}, origin: "https://evil.example", host: "herald:8080", want: true},
		{name: "star allows null", allowed: []string{"*"}, origin: "null", host: "herald:8080", want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p *OriginPolicy
			if tc.allowed != nil {
				var err error
				if p, err = NewOriginPolicy(tc.allowed); err != nil {
					t.Fatalf("NewOriginPolicy: %v", err)
				}
			}
			if got := p.Allowed(tc.origin, tc.host); got != tc.want {
				t.Fatalf("Allowed(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.want)
			}
		})
	}
}

func TestOriginPolicyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{name: "no scheme", entry: "example.com", want: "scheme://host"},
		{name: "path", entry: "https://example.com/app", want: "scheme://host"},
		{name: "empty host", entry: "https://", want: "scheme://host"},
		{name: "bad port", entry: "https://example.com:http", want: "scheme://host"},
		{name: "inner wildcard", entry: "https://a.*.example.com", want: "wildcard host"},
		{name: "bare wildcard", entry: "https://*.", want: "wildcard host"},
		{name: "null", entry: "null", want: "scheme://host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewOriginPolicy([]string{tc.entry})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewOriginPolicy(%q) error = %v, want one containing %q", tc.entry, err, tc.want)
			}
		})
	}
}

func TestOriginAllowedZeroAllocs(t *testing.T) {
	p, err := NewOriginPolicy([]string{"https://*.example.org", "http://localhost:*"})
	if err != nil {
		t.Fatal(err)
	}
	got := testing.AllocsPerRun(200, func() {
		p.Allowed("https://a.example.org", "herald:8080")
		p.Allowed("https://evil.example", "herald:8080")
		p.Allowed("http://herald:8081", "herald:8080")
	})
	if got != 0 {
		t.Fatalf("Allowed allocates %v times per run, want 0", got)
	}
}
