package codec

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strconv"
	"unsafe"

	"github.com/gobwas/httphead"
)

// The opening handshake is parsed with gobwas/httphead (the request-line,
// token-list and option scanners that gobwas/ws's Upgrader is built on)
// rather than with ws.Upgrader itself: the Upgrader reads through a bufio
// reader and writes its own response, while here the bytes are already
// buffered by the event loop, the caller needs to know where the header ends
// (what follows is WebSocket data), and the response is appended to the
// connection's own output later, after authentication. Working on the buffer
// directly also lets every refusal carry its exact status (405 with Allow,
// 426 with Sec-WebSocket-Version, 431, 505).

// DefaultMaxHeaderBytes is the header limit of a zero HandshakeLimits.
const DefaultMaxHeaderBytes = 8192

// HandshakeLimits bounds what ParseRequest accepts. The zero value is valid.
type HandshakeLimits struct {
	// MaxHeaderBytes bounds the request line plus header fields plus the
	// blank line ending them; 0 or less means DefaultMaxHeaderBytes. A
	// longer header is refused with 431.
	MaxHeaderBytes int
}

// Request is a parsed WebSocket upgrade request (RFC 6455 section 4.2.1).
//
// From ParseRequest and ParseHTTPRequest, its strings and Extensions share
// one private copy of the header bytes, so a Request stays valid after the
// caller's input buffer is reused, and keeping any one field keeps that
// copy (at most MaxHeaderBytes) alive. From ParseHTTPRequestView they
// alias the caller's buffer instead and are valid only as long as it is
// left unchanged; Clone makes such a view a Request of the first kind.
// Extensions' byte slices must be treated as read-only. A Request is not
// safe for concurrent modification.
type Request struct {
	// Path is the percent-decoded path of the request URI ("/ws"), and
	// RawQuery the query without the '?', still encoded.
	Path, RawQuery string
	// Host, Origin and Authorization are the header values ("" if absent).
	Host, Origin, Authorization string
	// Key is Sec-WebSocket-Key, checked to be the base64 form of 16 bytes.
	Key string
	// Protocols are the subprotocols offered in Sec-WebSocket-Protocol,
	// in the client's order of preference.
	Protocols []string
	// Extensions are the offers of Sec-WebSocket-Extensions, in order, as
	// gobwas/ws/wsflate's Extension.Negotiate takes them.
	Extensions []httphead.Option
	// UserAgent is User-Agent; XForwardedFor is X-Forwarded-For, several
	// fields joined with ", ".
	UserAgent, XForwardedFor string
	// LastEventID is Last-Event-ID, which a reconnecting EventSource
	// sends (HTML, "Server-sent events").
	LastEventID string
	// Plain is set by ParseHTTPRequest for a GET that asks for no
	// upgrade at all (no Upgrade, Sec-WebSocket-Key or
	// Sec-WebSocket-Version field): an ordinary HTTP request, such as an
	// event stream's. Key, Protocols and Extensions are then empty.
	Plain bool

	// raw is the private copy of the header the strings alias (Field
	// reads it).
	raw []byte
}

// ErrNotUpgrade is the refusal of a plain GET (Request.Plain) where only a
// WebSocket upgrade is served: what ParseRequest answers such a request.
var ErrNotUpgrade = badRequest("missing Upgrade: websocket")

// ParseRequest looks for a complete HTTP/1.1 upgrade request at the head of
// buf, which holds the bytes received so far.
//
// While the header is incomplete it returns ErrIncomplete, or a
// *HandshakeError with status 431 once buf holds MaxHeaderBytes without the
// header's end. Otherwise it returns n, the length of the header (bytes after
// it belong to the WebSocket stream), and either the parsed request or a
// *HandshakeError: 405 for a method other than GET, 505 for a major version
// other than 1, 400 for HTTP/1.0, 426 when Sec-WebSocket-Version is not 13 (or is
// missing), and 400 for a malformed request line or header field, a body, a
// missing or invalid Host, Upgrade, Connection or Sec-WebSocket-Key, or a
// repeated Host, Origin, Authorization, Sec-WebSocket-Key or
// Sec-WebSocket-Version.
//
// ParseRequest does not modify buf. It is safe for concurrent use.
func ParseRequest(buf []byte, lim HandshakeLimits) (*Request, int, error) {
	return parse(buf, lim, false)
}

// ParseHTTPRequest is ParseRequest that also accepts a plain GET, one
// with none of the upgrade's fields (Upgrade, Sec-WebSocket-Key,
// Sec-WebSocket-Version; Connection may say anything): it returns that
// request with Plain set, for the caller to serve or refuse (with
// ErrNotUpgrade, as ParseRequest does). A request with some of the
// upgrade's fields but not all is refused as by ParseRequest.
func ParseHTTPRequest(buf []byte, lim HandshakeLimits) (*Request, int, error) {
	return parse(buf, lim, true)
}

// ParseHTTPRequestView is ParseHTTPRequest without the copy: it parses
// into dst, whose previous contents it replaces (reusing the capacity of
// its Protocols and Extensions), and dst's strings alias buf. dst is valid
// only until buf's first n bytes change; a caller that keeps the request
// past that keeps dst.Clone(). Header field names in buf are lowered in
// place. It allocates nothing for a request without percent-escapes in
// its path, repeated X-Forwarded-For fields or more subprotocols and
// extension offers than dst had room for: the upgrade path of a server
// that answers each request before it reads the next.
func ParseHTTPRequestView(dst *Request, buf []byte, lim HandshakeLimits) (int, error) {
	n, err := headerLength(buf, lim)
	if err != nil {
		return 0, err
	}
	if err := dst.parse(buf[:n], true); err != nil {
		return n, err
	}
	return n, nil
}

// Clone returns a Request that owns a copy of r's header bytes, valid
// whatever becomes of the buffer r was parsed from.
func (r *Request) Clone() (*Request, error) {
	c := &Request{}
	if err := c.parse(bytes.Clone(r.raw), true); err != nil {
		return nil, err
	}
	return c, nil
}

func parse(buf []byte, lim HandshakeLimits, plain bool) (*Request, int, error) {
	n, err := headerLength(buf, lim)
	if err != nil {
		return nil, 0, err
	}
	req := &Request{}
	if err := req.parse(bytes.Clone(buf[:n]), plain); err != nil {
		return nil, n, err
	}
	return req, n, nil
}

// headerLength returns the length of the complete header at the head of
// buf, ErrIncomplete while it is not, or 431 past lim.
func headerLength(buf []byte, lim HandshakeLimits) (int, error) {
	limit := lim.MaxHeaderBytes
	if limit <= 0 {
		limit = DefaultMaxHeaderBytes
	}
	n := headerEnd(buf[:min(len(buf), limit)])
	if n < 0 {
		if len(buf) >= limit {
			return 0, &HandshakeError{Status: http.StatusRequestHeaderFieldsTooLarge, Reason: "request header too large"}
		}
		return 0, ErrIncomplete
	}
	return n, nil
}

// Which of the required header fields parseRequest has seen.
const (
	seenHost = 1 << iota
	seenUpgrade
	seenConnection
	seenVersion
	seenKey
	seenOrigin
	seenAuthorization
)

// parse parses a complete header into req, replacing what it held. raw
// is the bytes req's strings alias; the only writes to it lower the case
// of field names, which no string aliases, so parsing raw again gives the
// same Request.
func (req *Request) parse(raw []byte, allowPlain bool) error {
	*req = Request{raw: raw, Protocols: req.Protocols[:0], Extensions: req.Extensions[:0]}
	line, rest := nextLine(raw)
	rl, ok := httphead.ParseRequestLine(line)
	switch {
	case !ok || hasCTL(line):
		return badRequest("malformed request line")
	case rl.Version.Major != 1:
		return &HandshakeError{Status: http.StatusHTTPVersionNotSupported, Reason: "HTTP/1.1 required"}
	case rl.Version.Minor < 1:
		// HTTP/1.0 is a version this server speaks, but it has no Upgrade
		// (RFC 6455 4.1 asks for 1.1 or later): a bad request, not a
		// version it cannot answer in.
		return badRequest("WebSocket upgrade needs HTTP/1.1")
	case string(rl.Method) != http.MethodGet:
		return &HandshakeError{Status: http.StatusMethodNotAllowed, Reason: "method must be GET"}
	}
	if err := req.setURI(rl.URI); err != nil {
		return err
	}

	var seen, valid int
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return badRequest("obsolete header line folding")
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return badRequest("malformed header field")
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if hasCTL(value) {
			return badRequest("control character in header field")
		}
		lowerASCII(name)
		bit, err := req.setField(string(name), value)
		if err != nil {
			return err
		}
		if bit&(seenHost|seenVersion|seenKey|seenOrigin|seenAuthorization) != 0 && seen&bit != 0 {
			return badRequest("duplicate " + string(name) + " header field")
		}
		seen |= bit
		if bit != 0 && fieldValid(bit, value) {
			valid |= bit
		}
	}

	switch {
	case valid&seenHost == 0:
		return badRequest("missing or invalid Host")
	case allowPlain && seen&(seenUpgrade|seenVersion|seenKey) == 0:
		req.Plain = true
		return nil
	case valid&seenUpgrade == 0:
		return ErrNotUpgrade
	case valid&seenConnection == 0:
		return badRequest("missing Connection: Upgrade")
	case valid&seenVersion == 0:
		return &HandshakeError{Status: http.StatusUpgradeRequired, Reason: "Sec-WebSocket-Version must be 13"}
	case valid&seenKey == 0:
		return badRequest("missing or invalid Sec-WebSocket-Key")
	}
	return nil
}

// setField records one header field (name lowered) and returns the bit of
// the fields parseRequest tracks, or an error for a malformed value that
// refuses the request outright.
func (req *Request) setField(name string, value []byte) (int, error) {
	switch name {
	case "host":
		req.Host = str(value)
		return seenHost, nil
	case "upgrade":
		return seenUpgrade, nil
	case "connection":
		return seenConnection, nil
	case "sec-websocket-version":
		return seenVersion, nil
	case "sec-websocket-key":
		req.Key = str(value)
		return seenKey, nil
	case "origin":
		req.Origin = str(value)
		return seenOrigin, nil
	case "authorization":
		req.Authorization = str(value)
		return seenAuthorization, nil
	case "user-agent":
		if req.UserAgent == "" {
			req.UserAgent = str(value)
		}
	case "last-event-id":
		req.LastEventID = str(value)
	case "x-forwarded-for":
		if req.XForwardedFor == "" {
			req.XForwardedFor = str(value)
		} else if len(value) > 0 {
			req.XForwardedFor += ", " + str(value)
		}
	case "sec-websocket-protocol":
		// 1#token (RFC 6455 section 11.3.4); empty list elements are
		// allowed by RFC 9110 section 5.6.1.
		for len(value) > 0 {
			var item []byte
			item, value, _ = bytes.Cut(value, []byte{','})
			item = trimOWS(item)
			if len(item) == 0 {
				continue
			}
			if !isToken(item) {
				return 0, badRequest("malformed Sec-WebSocket-Protocol")
			}
			req.Protocols = append(req.Protocols, str(item))
		}
	case "sec-websocket-extensions":
		if len(value) == 0 {
			return 0, nil
		}
		var ok bool
		req.Extensions, ok = httphead.ParseOptions(value, req.Extensions)
		if !ok {
			return 0, badRequest("malformed Sec-WebSocket-Extensions")
		}
	case "content-length":
		if string(value) != "0" {
			return 0, badRequest("request body not allowed")
		}
	case "transfer-encoding":
		return 0, badRequest("request body not allowed")
	}
	return 0, nil
}

// fieldValid reports whether the value of a tracked field is acceptable.
// Upgrade and Connection are token lists that may appear more than once, so
// one good field suffices; the single-valued ones are also checked for
// duplicates by the caller.
func fieldValid(bit int, value []byte) bool {
	switch bit {
	case seenHost:
		return validHost(value)
	case seenUpgrade:
		return hasToken(value, "websocket")
	case seenConnection:
		return hasToken(value, "upgrade")
	case seenVersion:
		return string(value) == "13"
	case seenKey:
		return validKey(value)
	}
	return true
}

// setURI fills Path and RawQuery from the request target, which may be in
// origin form ("/ws?x=1") or absolute form ("http://host/ws?x=1").
func (req *Request) setURI(uri []byte) error {
	if len(uri) > 0 && uri[0] != '/' {
		i := bytes.Index(uri, []byte("://"))
		if i <= 0 {
			return badRequest("malformed request target")
		}
		uri = uri[i+3:]
		j := bytes.IndexAny(uri, "/?")
		if j < 0 {
			uri = nil
		} else {
			uri = uri[j:]
		}
	}
	if i := bytes.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	path, query := uri, []byte(nil)
	if i := bytes.IndexByte(uri, '?'); i >= 0 {
		path, query = uri[:i], uri[i+1:]
	}
	req.RawQuery = str(query)
	req.Path = str(path)
	if req.Path == "" {
		req.Path = "/"
	}
	if bytes.IndexByte(path, '%') >= 0 {
		p, err := url.PathUnescape(req.Path)
		if err != nil {
			return badRequest("malformed path escape")
		}
		req.Path = p
	}
	return nil
}

// AppendAccept appends the 101 Switching Protocols response that accepts
// req: Sec-WebSocket-Accept computed from req.Key, Sec-WebSocket-Protocol
// when protocol is not empty (it must be one of req.Protocols), and
// Sec-WebSocket-Extensions when extensions is not empty (for example
// "permessage-deflate; server_no_context_takeover").
func AppendAccept(dst []byte, req *Request, protocol string, extensions string) []byte {
	dst = append(dst, "HTTP/1.1 101 Switching Protocols\r\n"+
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	dst = appendAcceptKey(dst, req.Key)
	dst = append(dst, "\r\n"...)
	if protocol != "" {
		dst = append(dst, "Sec-WebSocket-Protocol: "...)
		dst = append(dst, protocol...)
		dst = append(dst, "\r\n"...)
	}
	if extensions != "" {
		dst = append(dst, "Sec-WebSocket-Extensions: "...)
		dst = append(dst, extensions...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// AppendHTTPError appends a complete HTTP/1.1 error response: the status
// line, Content-Type text/plain, Content-Length, Connection: close, Allow: GET
// for 405, Upgrade: websocket and Sec-WebSocket-Version: 13 for 426,
// Retry-After: 1 for 429 and 503 (the refusals of a limit, worth a retry
// soon rather than at once), and reason as the body (control characters in it become spaces). The caller
// closes the connection once it is written.
func AppendHTTPError(dst []byte, status int, reason string) []byte {
	retry := 0
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		retry = 1
	}
	return AppendHTTPRetry(dst, status, reason, retry)
}

// AppendHTTPRetry is AppendHTTPError with a Retry-After of retryAfter
// seconds, whatever the status; none when retryAfter is 0 or less.
func AppendHTTPRetry(dst []byte, status int, reason string, retryAfter int) []byte {
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	if reason == "" {
		reason = text
	}
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, text...)
	dst = append(dst, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(reason)+1), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	switch status {
	case http.StatusMethodNotAllowed:
		dst = append(dst, "Allow: GET\r\n"...)
	case http.StatusUpgradeRequired:
		dst = append(dst, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"...)
	}
	if retryAfter > 0 {
		dst = append(dst, "Retry-After: "...)
		dst = strconv.AppendInt(dst, int64(retryAfter), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	for i := 0; i < len(reason); i++ {
		c := reason[i]
		if c < 0x20 || c == 0x7F {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\n')
}

// websocketGUID is the fixed string of RFC 6455 section 1.3.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// appendAcceptKey appends base64(SHA-1(key + GUID)). It stays on the stack
// for keys of the standard 24 characters.
func appendAcceptKey(dst []byte, key string) []byte {
	var in [24 + len(websocketGUID)]byte
	var sum [sha1.Size]byte
	if len(key) == 24 {
		copy(in[copy(in[:], key):], websocketGUID)
		sum = sha1.Sum(in[:])
	} else {
		sum = sha1.Sum([]byte(key + websocketGUID))
	}
	var out [28]byte
	base64.StdEncoding.Encode(out[:], sum[:])
	return append(dst, out[:]...)
}

// headerEnd returns the length of the header at the head of p up to and
// including the blank line that ends it, or -1 if p holds no blank line.
// Lines end in CRLF; a bare LF is accepted too (RFC 9112 section 2.2).
func headerEnd(p []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return -1
		}
		line := p[i : i+j]
		i += j + 1
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			return i
		}
	}
}

// nextLine splits the first line, without its CRLF or LF, off p.
func nextLine(p []byte) (line, rest []byte) {
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		return p, nil
	}
	line, rest = p[:i], p[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// validKey reports whether v is the base64 encoding of 16 bytes.
func validKey(v []byte) bool {
	if len(v) != 24 {
		return false
	}
	var dec [18]byte
	n, err := base64.StdEncoding.Decode(dec[:], v)
	return err == nil && n == 16
}

// validHost reports whether v can be a URI authority without userinfo.
func validHost(v []byte) bool {
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c <= ' ' || c >= 0x7F || c == '/' || c == '\\' || c == '?' || c == '#' || c == '@' {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated list v holds tok, compared
// case-insensitively (tok is lower case).
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var item []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			item, v = v[:i], v[i+1:]
		} else {
			item, v = v, nil
		}
		item = trimOWS(item)
		if len(item) != len(tok) {
			continue
		}
		match := true
		for i := range item {
			if item[i]|0x20 != tok[i] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// isToken reports whether p is a non-empty RFC 9110 token.
func isToken(p []byte) bool {
	for _, c := range p {
		if !httphead.OctetTypes[c].IsToken() {
			return false
		}
	}
	return len(p) > 0
}

// hasCTL reports whether p holds a control character other than HTAB.
//
// It looks at eight bytes at a time, and at each byte only in a word that
// may hold one (a byte under 0x20, HTAB included, or a DEL): a request
// line carries the whole query, a token in it, so this runs over a few
// hundred bytes per handshake, and bytewise it cost about 3 ns a byte.
func hasCTL(p []byte) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for len(p) >= 8 {
		w := binary.LittleEndian.Uint64(p)
		del := w ^ (0x7F * ones)
		// A byte's high bit ends up set in under if it is below 0x20, and
		// in isDel if it is 0x7F (the classic SWAR "has less than" and
		// "has zero" tests: exact, since no byte borrows from another
		// unless a lower byte already matched).
		under := (w - 0x20*ones) &^ w & highs
		isDel := (del - ones) &^ del & highs
		if under|isDel != 0 && hasCTLBytes(p[:8]) {
			return true
		}
		p = p[8:]
	}
	return hasCTLBytes(p)
}

// hasCTLBytes is hasCTL one byte at a time.
func hasCTLBytes(p []byte) bool {
	for _, c := range p {
		if (c < ' ' && c != '\t') || c == 0x7F {
			return true
		}
	}
	return false
}

// trimOWS trims spaces and tabs from both ends of p.
func trimOWS(p []byte) []byte {
	i, j := 0, len(p)
	for i < j && (p[i] == ' ' || p[i] == '\t') {
		i++
	}
	for j > i && (p[j-1] == ' ' || p[j-1] == '\t') {
		j--
	}
	return p[i:j]
}

// lowerASCII lowers the ASCII letters of p in place.
func lowerASCII(p []byte) {
	for i, c := range p {
		if 'A' <= c && c <= 'Z' {
			p[i] = c + ('a' - 'A')
		}
	}
}

// str returns a string that shares p's bytes. Only for bytes of a private
// header copy that is never written again.
func str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	return unsafe.String(&p[0], len(p))
}

// badRequest returns a 400 refusal.
func badRequest(reason string) *HandshakeError {
	return &HandshakeError{Status: http.StatusBadRequest, Reason: reason}
}
