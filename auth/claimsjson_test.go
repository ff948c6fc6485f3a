package auth

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// claimsSeeds are claim sets of every shape decodeClaims takes or leaves.
var claimsSeeds = []string{
	`{"sub":"alice","channels":["news","chat:*"],"exp":1893553445,"iat":1893549845}`,
	`{"sub":"a","pub":"x","aud":["a","b"],"iss":"i","jti":"j","nbf":1.5}`,
	` { "SUB" : "upper" , "Channels" : [ ] , "Exp" : null } `,
	`{"sub":"a","sub":"b","exp":1,"exp":null,"channels":["x"],"channels":null}`,
	`{"other":123,"flag":true,"n":null,"s":"v","neg":-0.5e+3}`,
	`{}`, `{"sub":null}`, `{"exp":1e400}`, `{"exp":"1"}`, `{"sub":1}`, `{"channels":[1]}`,
	`{"sub":"\u0061"}`, `{"sub":"é"}`, `{"nested":{"a":1}}`, `{"a":[1]}`, `{"sub":"a",}`,
	`{"sub":"a"} x`, `[]`, `"x"`, `{"exp":01}`, `{"exp":-}`, `{"exp":1.}`, `{"exp":1e}`,
	`{"channels":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p"]}`,
	`{"channels":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}`,
	`{"exp":-62135596800}`, `{"exp":123456789012345}`, `{"exp":1234567890123456}`, `{"exp":-0}`,
	`{"channels":["a",]}`, `{"channels":["a" "b"]}`, `{"sub" "a"}`, `{"aud":""}`, `{"":"x"}`,
}

// FuzzDecodeClaims: whatever decodeClaims accepts, encoding/json accepts
// too and decodes to the same claims.
func FuzzDecodeClaims(f *testing.F) {
	for _, s := range claimsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var raw rawClaims
		if !decodeClaims(b, &raw) {
			return
		}
		got, want := raw.wire(b), wireClaims{}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: decodeClaims took it, encoding/json: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decodeClaims %+v, encoding/json %+v", b, got, want)
		}
	})
}

// TestDecodeClaimsTakesTokens: the claims herald's tokens carry take the
// fast decoder, not the fallback.
func TestDecodeClaimsTakesTokens(t *testing.T) {
	t.Parallel()
	for _, s := range claimsSeeds[:5] {
		var raw rawClaims
		if !decodeClaims([]byte(s), &raw) {
			t.Errorf("%s: left to encoding/json", s)
		}
	}
}

// wire is raw as encoding/json decodes b into wireClaims (copies, not
// views): what the differential tests compare.
func (raw *rawClaims) wire(b []byte) wireClaims {
	str := func(s span) string { return strings.Clone(s.in(b)) }
	list := func(l *spans) jwt.ClaimStrings {
		if l.n == 0 {
			return nil
		}
		out := make(jwt.ClaimStrings, l.n)
		for i, s := range l.list() {
			out[i] = str(s)
		}
		return out
	}
	date := func(d claimDate) *jwt.NumericDate {
		if !d.set {
			return nil
		}
		return &jwt.NumericDate{Time: d.t}
	}
	return wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: str(raw.iss), Subject: str(raw.sub), ID: str(raw.jti), Audience: list(&raw.aud),
			ExpiresAt: date(raw.exp), NotBefore: date(raw.nbf), IssuedAt: date(raw.iat),
		},
		Channels: list(&raw.channels),
		Pub:      list(&raw.pub),
	}
}
