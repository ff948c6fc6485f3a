// Package codec owns the WebSocket wire format of RFC 6455 for both roles:
// the opening handshake, frame decoding and encoding, masking, UTF-8
// validation and close codes. It has no goroutines and does no I/O: callers
// hand it the bytes they have buffered and append what it produces to their
// own output, so it fits an event loop that owns each connection.
//
// Where to start:
//
//   - Server handshake: ParseRequest on the bytes received so far, then
//     AppendAccept, or AppendHTTPError with a *HandshakeError's status.
//   - Client handshake: NewClientKey, AppendClientRequest, ParseResponse.
//   - Frames in: a Decoder per connection (Init with a shared
//     DecoderConfig), fed with Next; it validates, unmasks in place,
//     reassembles fragments into pooled buffers and checks text as UTF-8
//     incrementally, returning a *CloseError for any violation.
//   - Frames out: AppendFrame and AppendClose (server), AppendMaskedFrame and
//     AppendMaskedClose (client), AppendHeader for compressed payloads.
//
// Decoding, encoding and masking allocate nothing per frame in steady
// state; the tests assert it with testing.AllocsPerRun. permessage-deflate
// (RFC 7692, always without context takeover) is negotiated with
// NegotiateDeflate from Request.Extensions; Deflate compresses frames and
// inflates messages with a cap on the inflated size (DeflateConfig.MaxInflated),
// borrowing pooled flate state for one message at a time.
//
// Functions are safe for concurrent use; a Decoder belongs to one
// connection's goroutine.
package codec
