package auth

import (
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// decodeClaims decodes the claims of a verified HS256 token into wc
// without encoding/json's reflection, for the shape tokens have: one
// object of the registered claims and herald's channels and pub, strings
// without escapes or non-ASCII bytes, numbers, string arrays, and other
// keys with scalar values. It reports false, having possibly written to
// wc, for anything else (an escape, a non-ASCII byte, a nested object, a
// type encoding/json would refuse, malformed JSON), and the caller then
// decodes with encoding/json, which gives the answer. Where it reports
// true, wc is what json.Unmarshal would have made of b (keys matched
// case-insensitively, the last of repeated keys winning, null leaving a
// string or a string list as it was and clearing a date; see the
// differential fuzz test).
func decodeClaims(b []byte, wc *wireClaims) bool {
	d := claimsDecoder{b: b}
	if !d.byte('{') {
		return false
	}
	if d.peek() == '}' {
		d.i++
		return d.end()
	}
	for {
		key, ok := d.str()
		if !ok || !d.byte(':') {
			return false
		}
		if !d.field(key, wc) {
			return false
		}
		d.ws()
		if d.i >= len(d.b) {
			return false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			d.ws()
			continue
		case '}':
			d.i++
			return d.end()
		}
		return false
	}
}

// claimsDecoder is decodeClaims' position in its input.
type claimsDecoder struct {
	b []byte
	i int
}

func (d *claimsDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// byte skips whitespace and c.
func (d *claimsDecoder) byte(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		d.ws()
		return true
	}
	return false
}

func (d *claimsDecoder) peek() byte {
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// end reports whether only whitespace is left.
func (d *claimsDecoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// str reads a string of printable ASCII without escapes.
func (d *claimsDecoder) str() (string, bool) {
	if d.peek() != '"' {
		return "", false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return string(d.b[start:j]), true
		case c == '\\' || c < 0x20 || c >= 0x7F:
			return "", false
		}
	}
	return "", false
}

// literal reads null, true or false; it returns the word.
func (d *claimsDecoder) literal() (string, bool) {
	for _, w := range [...]string{"null", "true", "false"} {
		if len(d.b)-d.i >= len(w) && string(d.b[d.i:d.i+len(w)]) == w {
			d.i += len(w)
			return w, true
		}
	}
	return "", false
}

// number reads a JSON number and returns its text.
func (d *claimsDecoder) number() (string, bool) {
	start := d.i
	j := d.i
	digits := func() int {
		k := j
		for j < len(d.b) && '0' <= d.b[j] && d.b[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(d.b) && d.b[j] == '-' {
		j++
	}
	switch {
	case j < len(d.b) && d.b[j] == '0':
		j++
	case digits() == 0:
		return "", false
	}
	if j < len(d.b) && d.b[j] == '.' {
		j++
		if digits() == 0 {
			return "", false
		}
	}
	if j < len(d.b) && (d.b[j] == 'e' || d.b[j] == 'E') {
		j++
		if j < len(d.b) && (d.b[j] == '+' || d.b[j] == '-') {
			j++
		}
		if digits() == 0 {
			return "", false
		}
	}
	d.i = j
	return string(d.b[start:j]), true
}

// Fields of wireClaims, by JSON name.
const (
	fieldOther = iota
	fieldIss
	fieldSub
	fieldAud
	fieldExp
	fieldNbf
	fieldIat
	fieldJti
	fieldChannels
	fieldPub
)

// fieldOf matches a key as encoding/json does for ASCII keys: exactly or
// else case-insensitively.
func fieldOf(key string) int {
	for i, name := range [...]string{"", "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "channels", "pub"} {
		if i > 0 && len(key) == len(name) && asciiEqualFold(key, name) {
			return i
		}
	}
	return fieldOther
}

func asciiEqualFold(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// field reads key's value into wc.
func (d *claimsDecoder) field(key string, wc *wireClaims) bool {
	switch f := fieldOf(key); f {
	case fieldIss, fieldSub, fieldJti:
		var dst *string
		switch f {
		case fieldIss:
			dst = &wc.Issuer
		case fieldSub:
			dst = &wc.Subject
		default:
			dst = &wc.ID
		}
		if d.peek() == 'n' {
			w, ok := d.literal()
			return ok && w == "null" // null leaves a string as it was
		}
		s, ok := d.str()
		*dst = s
		return ok
	case fieldAud, fieldChannels, fieldPub:
		dst := &wc.Audience
		switch f {
		case fieldChannels:
			dst = &wc.Channels
		case fieldPub:
			dst = &wc.Pub
		}
		return d.strings(dst)
	case fieldExp, fieldNbf, fieldIat:
		dst := &wc.ExpiresAt
		switch f {
		case fieldNbf:
			dst = &wc.NotBefore
		case fieldIat:
			dst = &wc.IssuedAt
		}
		if d.peek() == 'n' {
			w, ok := d.literal()
			*dst = nil // null clears a pointer
			return ok && w == "null"
		}
		text, ok := d.number()
		if !ok {
			return false
		}
		v, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return false
		}
		// As jwt.NumericDate.UnmarshalJSON does.
		round, frac := math.Modf(v)
		*dst = jwt.NewNumericDate(time.Unix(int64(round), int64(frac*1e9)))
		return true
	}
	// Another claim: a scalar, skipped.
	switch c := d.peek(); {
	case c == '"':
		_, ok := d.str()
		return ok
	case c == '-' || ('0' <= c && c <= '9'):
		_, ok := d.number()
		return ok
	default:
		_, ok := d.literal()
		return ok
	}
}

// strings reads a jwt.ClaimStrings: a string, an array of strings, or
// null (which leaves dst as it was).
func (d *claimsDecoder) strings(dst *jwt.ClaimStrings) bool {
	switch d.peek() {
	case 'n':
		w, ok := d.literal()
		return ok && w == "null"
	case '"':
		s, ok := d.str()
		*dst = jwt.ClaimStrings{s}
		return ok
	case '[':
	default:
		return false
	}
	d.i++
	d.ws()
	var out jwt.ClaimStrings
	if d.peek() == ']' {
		d.i++
		*dst = nil // as ClaimStrings.UnmarshalJSON makes of []
		return true
	}
	for {
		s, ok := d.str()
		if !ok {
			return false
		}
		out = append(out, s)
		d.ws()
		switch d.peek() {
		case ',':
			d.i++
			d.ws()
			continue
		case ']':
			d.i++
			*dst = out
			return true
		}
		return false
	}
}
