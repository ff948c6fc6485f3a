package auth

import (
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// decodeClaims decodes the claims of a verified HS256 token into raw
// without encoding/json's reflection and without an allocation, for the
// shape tokens have: one object of the registered claims and herald's
// channels and pub, strings without escapes or non-ASCII bytes, numbers,
// string arrays of at most maxListed, and other keys with scalar values.
// It notes where each string lies in b rather than copying it, so that b
// can stay on its caller's stack (a string stored through a pointer would
// move it to the heap). It reports false, having possibly written to raw,
// for anything else (an escape, a non-ASCII byte, a nested object, a
// longer list, a type encoding/json would refuse, malformed JSON), and the
// caller then decodes with encoding/json, which gives the answer. Where it
// reports true, raw says what json.Unmarshal would have made of b
// (keys matched case-insensitively, the last of repeated keys winning,
// null leaving a string or a string list as it was and clearing a date;
// FuzzDecodeClaims compares the two).
func decodeClaims(b []byte, raw *rawClaims) bool {
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
		if !d.field(key.in(b), raw) {
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

// maxListed is the most strings a list claim (aud, channels, pub) may
// hold for decodeClaims; a longer one goes to encoding/json.
const maxListed = 16

// rawClaims is what decodeClaims found: where each string claim's value
// lies in its input, and the dates. It holds no pointer into the input,
// which its caller keeps alongside.
type rawClaims struct {
	iss, sub, jti      span
	aud, channels, pub spans
	claimTimes
}

// claimTimes are a token's date claims.
type claimTimes struct{ exp, nbf, iat claimDate }

// span is b[lo:hi] of decodeClaims' input.
type span struct{ lo, hi int32 }

// in is the span's text in b, a view: valid while b is.
func (s span) in(b []byte) string {
	if s.hi == s.lo {
		return ""
	}
	return unsafe.String(&b[s.lo], int(s.hi-s.lo))
}

// spans is a list claim's strings (jwt.ClaimStrings): the first n of s.
type spans struct {
	n int
	s [maxListed]span
}

// list is the list's strings.
func (l *spans) list() []span { return l.s[:l.n] }

// claimDate is a date claim (jwt.NumericDate): t when set, truncated to
// jwt.TimePrecision as the library truncates it.
type claimDate struct {
	t   time.Time
	set bool
}

// times are wc's date claims.
func (wc *wireClaims) times() claimTimes {
	date := func(d *jwt.NumericDate) claimDate {
		if d == nil {
			return claimDate{}
		}
		return claimDate{t: d.Time, set: true}
	}
	return claimTimes{exp: date(wc.ExpiresAt), nbf: date(wc.NotBefore), iat: date(wc.IssuedAt)}
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

// str reads a string of printable ASCII without escapes and returns
// where its text lies.
func (d *claimsDecoder) str() (span, bool) {
	if d.peek() != '"' {
		return span{}, false
	}
	start := d.i + 1
	for j := start; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return span{int32(start), int32(j)}, true
		case c == '\\' || c < 0x20 || c >= 0x7F:
			return span{}, false
		}
	}
	return span{}, false
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

// number reads a JSON number and returns its text, a view of the input.
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
	return span{int32(start), int32(j)}.in(d.b), true
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
// else case-insensitively (decodeClaims takes no other keys). The names
// are three letters long but channels: the length picks the names to try.
func fieldOf(key string) int {
	switch len(key) {
	case 3:
		var k [3]byte
		for i := range k {
			c := key[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			k[i] = c
		}
		switch string(k[:]) {
		case "iss":
			return fieldIss
		case "sub":
			return fieldSub
		case "aud":
			return fieldAud
		case "exp":
			return fieldExp
		case "nbf":
			return fieldNbf
		case "iat":
			return fieldIat
		case "jti":
			return fieldJti
		case "pub":
			return fieldPub
		}
	case len("channels"):
		if asciiEqualFold(key, "channels") {
			return fieldChannels
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

// field reads key's value into raw.
func (d *claimsDecoder) field(key string, raw *rawClaims) bool {
	switch f := fieldOf(key); f {
	case fieldIss, fieldSub, fieldJti:
		dst := &raw.iss
		switch f {
		case fieldSub:
			dst = &raw.sub
		case fieldJti:
			dst = &raw.jti
		}
		if d.peek() == 'n' {
			w, ok := d.literal()
			return ok && w == "null" // null leaves a string as it was
		}
		s, ok := d.str()
		*dst = s
		return ok
	case fieldAud, fieldChannels, fieldPub:
		dst := &raw.aud
		switch f {
		case fieldChannels:
			dst = &raw.channels
		case fieldPub:
			dst = &raw.pub
		}
		return d.strings(dst)
	case fieldExp, fieldNbf, fieldIat:
		dst := &raw.exp
		switch f {
		case fieldNbf:
			dst = &raw.nbf
		case fieldIat:
			dst = &raw.iat
		}
		if d.peek() == 'n' {
			w, ok := d.literal()
			*dst = claimDate{} // null clears a date
			return ok && w == "null"
		}
		text, ok := d.number()
		if !ok {
			return false
		}
		v, ok := seconds(text)
		if !ok {
			return false
		}
		// As jwt.NumericDate.UnmarshalJSON does.
		round, frac := math.Modf(v)
		*dst = claimDate{t: time.Unix(int64(round), int64(frac*1e9)).Truncate(jwt.TimePrecision), set: true}
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

// seconds is a JSON number's value, as strconv.ParseFloat gives it: an
// integer of up to 15 digits, the usual date, is converted directly
// (exactly, as it is below 2^53).
func seconds(text string) (float64, bool) {
	digits, neg := strings.CutPrefix(text, "-")
	if v, ok := smallInt(digits); ok {
		if neg {
			return -float64(v), true
		}
		return float64(v), true
	}
	v, err := strconv.ParseFloat(text, 64)
	return v, err == nil
}

// smallInt is digits' value when it is 1 to 15 decimal digits.
func smallInt(digits string) (int64, bool) {
	if len(digits) == 0 || len(digits) > 15 {
		return 0, false
	}
	var v int64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// strings reads a jwt.ClaimStrings: a string, an array of at most
// maxListed strings, or null (which leaves dst as it was).
func (d *claimsDecoder) strings(dst *spans) bool {
	switch d.peek() {
	case 'n':
		w, ok := d.literal()
		return ok && w == "null"
	case '"':
		s, ok := d.str()
		dst.n, dst.s[0] = 1, s
		return ok
	case '[':
	default:
		return false
	}
	d.i++
	d.ws()
	if d.peek() == ']' {
		d.i++
		dst.n = 0 // as ClaimStrings.UnmarshalJSON makes of [] (nil)
		return true
	}
	var out spans
	for {
		s, ok := d.str()
		if !ok || out.n == maxListed {
			return false
		}
		out.s[out.n] = s
		out.n++
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
