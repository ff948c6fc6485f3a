package codec

import (
	"errors"
	"strconv"
)

// ErrIncomplete reports that the buffered bytes do not yet hold a complete
// HTTP header; call again when more bytes have arrived.
var ErrIncomplete = errors.New("codec: handshake incomplete")

// HandshakeError is a refused opening handshake: the HTTP status to answer
// with (400, 405, 426, 431, 505, ...) and a short reason for the body and
// logs. Write the response with AppendHTTPError(dst, e.Status, e.Reason),
// then close the connection.
//
// On the client side (ParseResponse) Status is the status the server sent.
type HandshakeError struct {
	Status int
	Reason string
}

// Error implements error.
func (e *HandshakeError) Error() string {
	return "codec: handshake refused: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// CloseError is a protocol violation found by the Decoder. The caller must
// send a close frame with Code (CloseProtocolError, CloseInvalidPayload,
// CloseMessageTooBig or ClosePolicyViolation) and Reason, then close the
// connection (RFC 6455 section 7.1.7 "Fail the WebSocket Connection").
type CloseError struct {
	Code   uint16
	Reason string
}

// Error implements error.
func (e *CloseError) Error() string {
	return "codec: " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// protocolError returns a CloseError with code CloseProtocolError.
func protocolError(reason string) *CloseError {
	return &CloseError{Code: CloseProtocolError, Reason: reason}
}

// tooBig returns a CloseError with code CloseMessageTooBig.
func tooBig(reason string) *CloseError {
	return &CloseError{Code: CloseMessageTooBig, Reason: reason}
}

// invalidUTF8 returns a CloseError with code CloseInvalidPayload for text
// that is not valid UTF-8.
func invalidUTF8() *CloseError {
	return &CloseError{Code: CloseInvalidPayload, Reason: "text is not valid UTF-8"}
}
