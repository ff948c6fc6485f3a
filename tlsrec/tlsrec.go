// Package tlsrec is the TLS 1.3 record layer (RFC 8446 section 5) of a
// connection whose handshake crypto/tls has already done: given the
// negotiated cipher suite and the two application traffic secrets, it
// opens the peer's records and seals ours, in place, on the event loop
// that owns the connection.
//
// It is written here rather than taken from crypto/tls because crypto/tls
// only offers its record layer behind a blocking net.Conn (a goroutine and
// two buffers per connection), and this is the hot path of every wss
// byte: a Conn is a few hundred bytes of keys and sequence numbers, holds
// no buffer and no expanded cipher (the AEAD is rebuilt from the key for
// each batch of records, see aead), and decrypts into the caller's own
// input buffer.
//
// What it does, after the handshake, as a server:
//
//   - AES-128-GCM, AES-256-GCM and ChaCha20-Poly1305; nonce = IV XOR the
//     64-bit record sequence number, which may never wrap (5.3).
//   - Record limits: 2^14 bytes of plaintext and 2^14+256 of ciphertext;
//     larger records are refused with record_overflow (5.1, 5.2).
//   - The inner content type, with the zero padding stripped (5.4).
//   - Alerts: close_notify is answered with close_notify; any other alert
//     closes the connection (6).
//   - KeyUpdate from the peer updates the read key, and update_requested
//     makes the next flush send a KeyUpdate and update the write key
//     (4.6.3); a run of KeyUpdates without application data is bounded.
//   - Every other post-handshake message (a ClientHello: renegotiation;
//     NewSessionTicket, which a client never sends; anything unknown) is
//     refused with unexpected_message, and so is a ChangeCipherSpec record,
//     which is allowed only during the handshake (crypto/tls handles
//     those). The server sends no NewSessionTicket.
package tlsrec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"slices"

	"golang.org/x/crypto/chacha20poly1305"
)

// Record layer limits (RFC 8446 5.1, 5.2).
const (
	HeaderLen     = 5
	MaxPlaintext  = 1 << 14
	MaxCiphertext = MaxPlaintext + 256
	tagLen        = 16
	// overhead is what sealing adds to one record's plaintext: the
	// header, the inner content type and the tag.
	overhead = HeaderLen + 1 + tagLen
	// maxKeyUpdates bounds the KeyUpdates a peer may send without an
	// application data record in between.
	maxKeyUpdates = 16
)

// Content types.
const (
	typeChangeCipherSpec = 20
	typeAlert            = 21
	typeHandshake        = 22
	typeApplicationData  = 23
)

// Alert descriptions (RFC 8446 6).
const (
	AlertCloseNotify        = 0
	AlertUnexpectedMessage  = 10
	AlertBadRecordMAC       = 20
	AlertRecordOverflow     = 22
	AlertDecodeError        = 50
	AlertIllegalParameter   = 47
	AlertInternalError      = 80
	handshakeKeyUpdate      = 24
	handshakeNewTicket      = 4
	keyUpdateNotRequested   = 0
	keyUpdateRequested      = 1
	alertLevelWarning       = 1
	alertLevelFatal         = 2
	maxHandshakeInOneRecord = MaxPlaintext
)

// Error is a fatal record layer error: the connection must be closed, with
// Alert sent to the peer (Conn.Seal does that when closing).
type Error struct {
	Alert  uint8
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("tls record: %s (alert %d)", e.Reason, e.Alert) }

// ErrPeerAlert is returned once the peer sent a fatal alert: close without
// answering.
var ErrPeerAlert = errors.New("tls record: peer sent an alert")

// half is one direction's keys and sequence number. secret is kept (only
// its first hash-length bytes are used) to derive the next one on a
// KeyUpdate.
type half struct {
	secret [48]byte
	key    [32]byte
	iv     [12]byte
	seq    uint64
}

// Conn is one connection's record layer state, server side. It is owned by
// one goroutine (the connection's loop).
type Conn struct {
	in, out half
	suite   uint16
	// plain is how many bytes at the front of the next input given to
	// Open are plaintext already decrypted and left unconsumed.
	plain int32
	// alert is the alert to send when closing (set by a fatal error);
	// alertSet says it is set (close_notify is 0).
	alert    uint8
	alertSet bool
	// sendUpdate is set when the peer asked for a KeyUpdate: the next
	// Seal sends one and updates the write key.
	sendUpdate bool
	// updates counts the KeyUpdates since the last application data that
	// carried bytes.
	updates uint8
	// closeNotify is set once the peer's close_notify was read: what
	// follows is ignored.
	closeNotify bool
	// closed is set once the close alert was sealed: nothing more is.
	closed bool
}

// Supported reports whether suite is a TLS 1.3 suite tlsrec carries.
func Supported(suite uint16) bool {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

func suiteParams(suite uint16) (func() hash.Hash, int) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32
	default:
		return sha256.New, 32
	}
}

// New returns the server side record layer for suite, from the client's
// and the server's application traffic secrets (CLIENT_TRAFFIC_SECRET_0
// and SERVER_TRAFFIC_SECRET_0), both sequence numbers at zero.
func New(suite uint16, clientSecret, serverSecret []byte) (*Conn, error) {
	if !Supported(suite) {
		return nil, fmt.Errorf("tls record: cipher suite %#04x not supported", suite)
	}
	h, _ := suiteParams(suite)
	if len(clientSecret) != h().Size() || len(serverSecret) != len(clientSecret) {
		return nil, errors.New("tls record: traffic secret of the wrong length")
	}
	c := &Conn{suite: suite}
	if err := c.in.set(suite, clientSecret); err != nil {
		return nil, err
	}
	if err := c.out.set(suite, serverSecret); err != nil {
		return nil, err
	}
	return c, nil
}

// Suite is the connection's cipher suite.
func (c *Conn) Suite() uint16 { return c.suite }

// expandLabel is HKDF-Expand-Label (RFC 8446 7.1) with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, n int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = binary.BigEndian.AppendUint16(info, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), n)
}

// set installs secret and derives its key and IV (RFC 8446 7.3); the
// sequence number restarts at zero.
func (x *half) set(suite uint16, secret []byte) error {
	h, keyLen := suiteParams(suite)
	key, err := expandLabel(h, secret, "key", keyLen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	if err != nil {
		return err
	}
	x.secret = [48]byte{}
	copy(x.secret[:], secret)
	x.key = [32]byte{}
	copy(x.key[:], key)
	copy(x.iv[:], iv)
	x.seq = 0
	return nil
}

// update moves to the next traffic secret (RFC 8446 7.2).
func (x *half) update(suite uint16) error {
	h, _ := suiteParams(suite)
	n := h().Size()
	next, err := expandLabel(h, x.secret[:n], "traffic upd", n)
	if err != nil {
		return err
	}
	return x.set(suite, next)
}

// aead builds the cipher from the key. It is not kept between batches: an
// idle connection holds only the key (an expanded AES-GCM is over 1 KB).
func (x *half) aead(suite uint16) (cipher.AEAD, error) {
	_, keyLen := suiteParams(suite)
	if suite == tls.TLS_CHACHA20_POLY1305_SHA256 {
		return chacha20poly1305.New(x.key[:keyLen])
	}
	b, err := aes.NewCipher(x.key[:keyLen])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// nonce writes the per-record nonce (RFC 8446 5.3) into n.
func (x *half) nonce(n *[12]byte) {
	*n = x.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], x.seq)
	for i := range 8 {
		n[4+i] ^= s[i]
	}
}

// Result is what Open found besides application data.
type Result struct {
	// N is the length of the plaintext now at in[:N]: the plaintext left
	// unconsumed by the previous call first, then the new.
	N int
	// End is the offset in in of the first byte not yet decrypted (a
	// partial record); in[N:End] is free room.
	End int
	// New reports whether any new plaintext was added.
	New bool
	// Flush is set when a KeyUpdate must be sent: the caller makes sure
	// the connection is flushed (its Seal runs).
	Flush bool
	// Close is set when the peer sent close_notify: deliver the plaintext,
	// then close (Seal answers with close_notify).
	Close bool
}

// Open decrypts, in place, the complete records of in (after the
// plaintext left by the previous call, Result.N of which the caller then
// consumes some with Consume). A non-nil error is fatal: close the
// connection; an *Error's alert is sent by Seal when closing.
func (c *Conn) Open(in []byte) (Result, error) {
	r := Result{N: int(c.plain), End: int(c.plain)}
	if r.N > len(in) {
		return r, c.fail(AlertInternalError, "input shorter than the plaintext kept")
	}
	if c.closeNotify {
		r.End = len(in)
		return r, nil
	}
	var aead cipher.AEAD
	for len(in)-r.End >= HeaderLen {
		hdr := in[r.End : r.End+HeaderLen]
		typ, n := hdr[0], int(binary.BigEndian.Uint16(hdr[3:]))
		switch {
		case typ == typeChangeCipherSpec:
			return r, c.fail(AlertUnexpectedMessage, "change_cipher_spec after the handshake")
		case typ != typeApplicationData:
			return r, c.fail(AlertUnexpectedMessage, "unprotected record after the handshake")
		case hdr[1] != 3:
			return r, c.fail(AlertDecodeError, "bad record version")
		case n > MaxCiphertext:
			return r, c.fail(AlertRecordOverflow, "record too long")
		case n < 1+tagLen:
			return r, c.fail(AlertBadRecordMAC, "record too short")
		}
		if len(in)-r.End-HeaderLen < n {
			break // partial record
		}
		if c.in.seq == math.MaxUint64 {
			return r, c.fail(AlertInternalError, "read sequence number exhausted")
		}
		if aead == nil {
			var err error
			if aead, err = c.in.aead(c.suite); err != nil {
				return r, c.fail(AlertInternalError, err.Error())
			}
		}
		var nonce [12]byte
		c.in.nonce(&nonce)
		body := in[r.End+HeaderLen : r.End+HeaderLen+n]
		pt, err := aead.Open(body[:0], nonce[:], body, hdr)
		if err != nil {
			return r, c.fail(AlertBadRecordMAC, "record authentication failed")
		}
		c.in.seq++
		r.End += HeaderLen + n
		// Strip the zero padding; the last non-zero byte is the type.
		i := len(pt) - 1
		for i >= 0 && pt[i] == 0 {
			i--
		}
		if i < 0 {
			return r, c.fail(AlertUnexpectedMessage, "record without a content type")
		}
		inner, pt := pt[i], pt[:i]
		if len(pt) > MaxPlaintext {
			return r, c.fail(AlertRecordOverflow, "plaintext too long")
		}
		switch inner {
		case typeApplicationData:
			// Only a record that carries data resets the KeyUpdate count:
			// an empty one costs the peer 22 bytes, and KeyUpdates
			// interleaved with empty records would rekey without bound.
			if len(pt) > 0 {
				c.updates = 0
				copy(in[r.N:], pt)
				r.N += len(pt)
				r.New = true
			}
		case typeAlert:
			if len(pt) != 2 {
				return r, c.fail(AlertDecodeError, "malformed alert")
			}
			if pt[1] != AlertCloseNotify {
				c.closed = true // no answer to a fatal alert
				return r, ErrPeerAlert
			}
			c.closeNotify = true
			r.Close = true
			r.End = len(in) // what follows close_notify is ignored
			return r, nil
		case typeHandshake:
			rekey, err := c.handshake(pt)
			if err != nil {
				return r, err
			}
			if rekey {
				aead = nil // the read key changed
			}
			if c.sendUpdate {
				r.Flush = true
			}
		default:
			return r, c.fail(AlertUnexpectedMessage, "unknown content type")
		}
	}
	return r, nil
}

// handshake handles post-handshake messages: only KeyUpdate is allowed,
// and it must end its record (a key change aligns with a record boundary,
// RFC 8446 5.1); a message split across records is refused.
func (c *Conn) handshake(pt []byte) (rekey bool, err error) {
	if len(pt) == 0 {
		return false, c.fail(AlertUnexpectedMessage, "empty handshake record")
	}
	for len(pt) > 0 {
		if len(pt) < 4 {
			return false, c.fail(AlertUnexpectedMessage, "handshake message split across records")
		}
		typ := pt[0]
		n := int(pt[1])<<16 | int(pt[2])<<8 | int(pt[3])
		if n > len(pt)-4 {
			return false, c.fail(AlertUnexpectedMessage, "handshake message split across records")
		}
		body := pt[4 : 4+n]
		pt = pt[4+n:]
		switch typ {
		case handshakeKeyUpdate:
			if n != 1 {
				return false, c.fail(AlertDecodeError, "malformed KeyUpdate")
			}
			if len(pt) != 0 {
				return false, c.fail(AlertUnexpectedMessage, "KeyUpdate not at the end of its record")
			}
			switch body[0] {
			case keyUpdateNotRequested:
			case keyUpdateRequested:
				c.sendUpdate = true
			default:
				return false, c.fail(AlertIllegalParameter, "bad KeyUpdate request")
			}
			if c.updates++; c.updates > maxKeyUpdates {
				return false, c.fail(AlertUnexpectedMessage, "too many KeyUpdates")
			}
			if err := c.in.update(c.suite); err != nil {
				return false, c.fail(AlertInternalError, err.Error())
			}
			return true, nil
		default:
			// ClientHello (renegotiation), NewSessionTicket, or anything
			// else: TLS 1.3 has no such thing from a client here.
			return false, c.fail(AlertUnexpectedMessage, fmt.Sprintf("handshake message %d after the handshake", typ))
		}
	}
	return false, nil
}

// fail records the alert to send on close and returns the error.
func (c *Conn) fail(alert uint8, reason string) error {
	if !c.alertSet {
		c.alert, c.alertSet = alert, true
	}
	return &Error{Alert: alert, Reason: reason}
}

// Consume tells c that the caller consumed k of the r.N plaintext bytes at
// in[:r.N] Open returned: it moves the rest just before the partial
// record, where the next call to Open expects them, and returns how many
// bytes of in are used up. in[:k] is not touched, so the caller may have
// queued parts of it for writing.
func (c *Conn) Consume(in []byte, r Result, k int) int {
	left := r.N - k
	dst := r.End - left
	copy(in[dst:r.End], in[k:r.N])
	c.plain = int32(left)
	return dst
}

// SealedLen is the most bytes Seal appends for n bytes of plaintext.
func SealedLen(n int) int {
	records := (n + MaxPlaintext - 1) / MaxPlaintext
	// a KeyUpdate and an alert may follow
	return n + records*overhead + 2*(overhead+4)
}

// Seal appends to dst the records carrying the bytes of bufs as
// application data (filling each record up to MaxPlaintext, so small
// writes share a record), then the KeyUpdate the peer asked for, and, when
// closing, the close alert (close_notify, or the fatal alert a failed Open
// recorded). dst needs SealedLen(total) bytes of capacity to avoid a
// reallocation. After the close alert nothing more is sealed.
func (c *Conn) Seal(dst []byte, bufs [][]byte, closing bool) ([]byte, error) {
	if c.closed {
		return dst, nil
	}
	if c.alertSet && c.alert != AlertCloseNotify {
		bufs = nil // a fatal error: only the alert goes out
		closing = true
	}
	var aead cipher.AEAD
	var err error
	get := func() (cipher.AEAD, error) {
		if aead == nil {
			aead, err = c.out.aead(c.suite)
		}
		return aead, err
	}
	bi, off := 0, 0
	for bi < len(bufs) {
		a, err := get()
		if err != nil {
			return dst, err
		}
		start := len(dst)
		dst = append(dst, typeApplicationData, 3, 3, 0, 0)
		n := 0
		for bi < len(bufs) && n < MaxPlaintext {
			b := bufs[bi][off:]
			take := min(len(b), MaxPlaintext-n)
			dst = append(dst, b[:take]...)
			n += take
			off += take
			if off == len(bufs[bi]) {
				bi, off = bi+1, 0
			}
		}
		if n == 0 {
			dst = dst[:start]
			continue
		}
		if dst, err = c.sealRecord(a, dst, start, typeApplicationData); err != nil {
			return dst, err
		}
	}
	if c.sendUpdate && !closing {
		a, err := get()
		if err != nil {
			return dst, err
		}
		start := len(dst)
		dst = append(dst, typeApplicationData, 3, 3, 0, 0, handshakeKeyUpdate, 0, 0, 1, keyUpdateNotRequested)
		if dst, err = c.sealRecord(a, dst, start, typeHandshake); err != nil {
			return dst, err
		}
		if err := c.out.update(c.suite); err != nil {
			return dst, err
		}
		c.sendUpdate = false
		aead = nil
	}
	if closing {
		a, err := get()
		if err != nil {
			return dst, err
		}
		level := byte(alertLevelWarning)
		if c.alert != AlertCloseNotify {
			level = alertLevelFatal
		}
		start := len(dst)
		dst = append(dst, typeApplicationData, 3, 3, 0, 0, level, c.alert)
		if dst, err = c.sealRecord(a, dst, start, typeAlert); err != nil {
			return dst, err
		}
		c.closed = true
	}
	return dst, nil
}

// sealRecord encrypts the record begun at dst[start:] (header then
// plaintext) in place, appending its inner type and tag.
func (c *Conn) sealRecord(a cipher.AEAD, dst []byte, start int, inner byte) ([]byte, error) {
	if c.out.seq == math.MaxUint64 {
		return dst[:start], errors.New("tls record: write sequence number exhausted")
	}
	dst = append(dst, inner)
	dst = slices.Grow(dst, tagLen) // so that the tag fits in place
	n := len(dst) - start - HeaderLen + tagLen
	binary.BigEndian.PutUint16(dst[start+3:], uint16(n))
	var nonce [12]byte
	c.out.nonce(&nonce)
	hdr := dst[start : start+HeaderLen]
	pt := dst[start+HeaderLen:]
	out := a.Seal(pt[:0], nonce[:], pt, hdr)
	c.out.seq++
	return dst[:start+HeaderLen+len(out)], nil
}
