package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/gobwas/httphead"
)

// ErrBadResponse is wrapped by the errors ParseResponse returns for a
// response that is not a valid acceptance of the handshake.
var ErrBadResponse = errors.New("codec: bad handshake response")

// maxResponseHeader bounds the response header ParseResponse waits for.
const maxResponseHeader = 64 << 10

// NewClientKey returns a fresh Sec-WebSocket-Key: 16 bytes read from r
// (crypto/rand when r is nil), base64-encoded.
func NewClientKey(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var nonce [16]byte
	if _, err := io.ReadFull(r, nonce[:]); err != nil {
		return "", fmt.Errorf("codec: reading handshake key: %w", err)
	}
	return base64.StdEncoding.EncodeToString(nonce[:]), nil
}

// AppendClientRequest appends an HTTP/1.1 upgrade request for requestURI
// ("/" when empty) on host, with key as Sec-WebSocket-Key, version 13, and
// extraHeaders, each a complete "Name: value" field (for example
// "Sec-WebSocket-Protocol: chat" or "Authorization: Bearer ...").
func AppendClientRequest(dst []byte, host, requestURI, key string, extraHeaders ...string) []byte {
	if requestURI == "" {
		requestURI = "/"
	}
	dst = append(dst, "GET "...)
	dst = append(dst, requestURI...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\nSec-WebSocket-Version: 13\r\n"...)
	for _, h := range extraHeaders {
		dst = append(dst, h...)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// ParseResponse parses the server's handshake response at the head of buf
// for a request made with key. It returns ErrIncomplete while the header is
// incomplete. Otherwise n is the header's length (bytes after it are
// WebSocket frames) and err is nil only for a 101 response with Upgrade:
// websocket, Connection: Upgrade and the Sec-WebSocket-Accept that key
// calls for. A status other than 101 gives a *HandshakeError with that
// status; other faults give errors wrapping ErrBadResponse.
func ParseResponse(buf []byte, key string) (n int, err error) {
	n = headerEnd(buf[:min(len(buf), maxResponseHeader)])
	if n < 0 {
		if len(buf) >= maxResponseHeader {
			return 0, fmt.Errorf("%w: header over %d bytes", ErrBadResponse, maxResponseHeader)
		}
		return 0, ErrIncomplete
	}
	line, rest := nextLine(buf[:n])
	rl, ok := httphead.ParseResponseLine(line)
	switch {
	case !ok || rl.Version.Major != 1:
		return n, fmt.Errorf("%w: malformed status line %q", ErrBadResponse, line)
	case rl.Status != 101:
		return n, &HandshakeError{Status: rl.Status, Reason: string(rl.Reason)}
	}

	var upgrade, connection, accept bool
	var want [28]byte
	appendAcceptKey(want[:0], key)
	for {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return n, fmt.Errorf("%w: malformed header field %q", ErrBadResponse, line)
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = upgrade || hasToken(value, "websocket")
		case bytes.EqualFold(name, []byte("Connection")):
			connection = connection || hasToken(value, "upgrade")
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			if accept || !bytes.Equal(value, want[:]) {
				return n, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrBadResponse)
			}
			accept = true
		}
	}
	switch {
	case !upgrade:
		return n, fmt.Errorf("%w: missing Upgrade: websocket", ErrBadResponse)
	case !connection:
		return n, fmt.Errorf("%w: missing Connection: Upgrade", ErrBadResponse)
	case !accept:
		return n, fmt.Errorf("%w: missing Sec-WebSocket-Accept", ErrBadResponse)
	}
	return n, nil
}
