package tlsrec

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
	"unsafe"
)

const sizeofConn = unsafe.Sizeof(Conn{})

var suites = []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256}

// pair returns a server Conn and its mirror, a Conn with the secrets
// swapped, which seals as the client would and opens what the server seals.
func pair(t testing.TB, suite uint16) (srv, cli *Conn) {
	t.Helper()
	h, _ := suiteParams(suite)
	n := h().Size()
	cs, ss := bytes.Repeat([]byte{1}, n), bytes.Repeat([]byte{2}, n)
	srv, err := New(suite, cs, ss)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = New(suite, ss, cs)
	if err != nil {
		t.Fatal(err)
	}
	return srv, cli
}

// record seals one record of inner type typ carrying pt, as the mirror.
func record(t testing.TB, c *Conn, typ byte, pt []byte) []byte {
	t.Helper()
	a, err := c.out.aead(c.suite)
	if err != nil {
		t.Fatal(err)
	}
	dst := append([]byte{typeApplicationData, 3, 3, 0, 0}, pt...)
	dst, err = c.sealRecord(a, dst, 0, typ)
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// openAll runs Open and Consume over in, consuming every plaintext byte,
// and returns the plaintext and the bytes used up.
func openAll(c *Conn, in []byte) ([]byte, Result, int, error) {
	r, err := c.Open(in)
	if err != nil {
		return nil, r, 0, err
	}
	pt := append([]byte(nil), in[:r.N]...)
	return pt, r, c.Consume(in, r, r.N), nil
}

func TestRoundTrip(t *testing.T) {
	for _, s := range suites {
		srv, cli := pair(t, s)
		// client -> server, several records and one large write
		big := bytes.Repeat([]byte("x"), 3*MaxPlaintext+7)
		in, err := cli.Seal(nil, [][]byte{[]byte("hello "), []byte("world"), big}, false)
		if err != nil {
			t.Fatal(err)
		}
		pt, _, used, err := openAll(srv, in)
		if err != nil || used != len(in) || !bytes.Equal(pt, append([]byte("hello world"), big...)) {
			t.Fatalf("suite %#x: open: err %v used %d/%d, %d bytes", s, err, used, len(in), len(pt))
		}
		// server -> client, then close_notify
		out, err := srv.Seal(nil, [][]byte{[]byte("bye")}, true)
		if err != nil {
			t.Fatal(err)
		}
		r, err := cli.Open(out)
		if err != nil || string(out[:r.N]) != "bye" || !r.Close {
			t.Fatalf("suite %#x: client open: %v %+v", s, err, r)
		}
		if len(out) > SealedLen(3) {
			t.Fatalf("sealed %d > SealedLen %d", len(out), SealedLen(3))
		}
		if more, _ := srv.Seal(nil, [][]byte{[]byte("late")}, false); len(more) != 0 {
			t.Fatal("sealed after the close alert")
		}
	}
}

// TestPartial feeds records a byte at a time, with the caller consuming
// only part of the plaintext each time, as a frame decoder does.
func TestPartial(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	msg := []byte("the quick brown fox jumps over the lazy dog")
	var wire []byte
	for i := range msg {
		rec, _ := cli.Seal(nil, [][]byte{msg[i : i+1]}, false)
		wire = append(wire, rec...)
	}
	var buf, got []byte
	for i := range wire {
		buf = append(buf, wire[i])
		r, err := srv.Open(buf)
		if err != nil {
			t.Fatal(err)
		}
		k := r.N / 2 // consume half the plaintext, keep the rest
		if i == len(wire)-1 {
			k = r.N
		}
		got = append(got, buf[:k]...)
		used := srv.Consume(buf, r, k)
		buf = append([]byte(nil), buf[used:]...)
	}
	if !bytes.Equal(got, msg) || len(buf) != 0 {
		t.Fatalf("got %q, %d left", got, len(buf))
	}
}

func TestPadding(t *testing.T) {
	srv, cli := pair(t, tls.TLS_CHACHA20_POLY1305_SHA256)
	rec := record(t, cli, typeApplicationData, nil)
	// A record "abc" + type + 20 bytes of padding, sealed by hand.
	a, _ := cli.out.aead(cli.suite)
	dst := append([]byte{typeApplicationData, 3, 3, 0, 0}, "abc"...)
	dst = append(dst, typeApplicationData)
	dst = append(dst, make([]byte, 19)...)
	dst, _ = cli.sealRecord(a, dst, 0, 0) // the final zero is padding too
	pt, _, _, err := openAll(srv, append(rec, dst...))
	if err != nil || string(pt) != "abc" {
		t.Fatalf("%q %v", pt, err)
	}
}

func TestKeyUpdate(t *testing.T) {
	for _, s := range suites {
		srv, cli := pair(t, s)
		// Client rotates its key, asking the server to update too.
		in := record(t, cli, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, keyUpdateRequested})
		if err := cli.out.update(s); err != nil {
			t.Fatal(err)
		}
		after, _ := cli.Seal(nil, [][]byte{[]byte("after")}, false)
		pt, r, _, err := openAll(srv, append(in, after...))
		if err != nil || string(pt) != "after" || !r.Flush {
			t.Fatalf("suite %#x: %q %+v %v", s, pt, r, err)
		}
		// The server answers with its own KeyUpdate, then uses the new key.
		out, _ := srv.Seal(nil, nil, false)
		out2, _ := srv.Seal(nil, [][]byte{[]byte("new key")}, false)
		if srv.sendUpdate {
			t.Fatal("update still pending")
		}
		pt, r, _, err = openAll(cli, append(out, out2...))
		if err != nil || string(pt) != "new key" {
			t.Fatalf("client: %q %v", pt, err)
		}
		if cli.sendUpdate {
			t.Fatal("the server's answer asked for another update")
		}
	}
}

func TestKeyUpdateFlood(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	var in []byte
	for range maxKeyUpdates + 1 {
		in = append(in, record(t, cli, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, keyUpdateRequested})...)
		_ = cli.out.update(cli.suite)
	}
	_, _, _, err := openAll(srv, in)
	wantAlert(t, err, AlertUnexpectedMessage)
	// Only the alert goes out, once.
	out, _ := srv.Seal(nil, [][]byte{[]byte("x")}, false)
	r, err := cli.Open(out)
	if !errors.Is(err, ErrPeerAlert) || r.N != 0 {
		t.Fatalf("client got %+v %v", r, err)
	}
}

// TestKeyUpdateFloodWithEmptyRecords: empty application-data records
// between KeyUpdates do not reset the count (each pair would otherwise
// cost the loop a rekey for 49 bytes, without bound).
func TestKeyUpdateFloodWithEmptyRecords(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	var in []byte
	for range maxKeyUpdates + 1 {
		in = append(in, record(t, cli, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, keyUpdateRequested})...)
		_ = cli.out.update(cli.suite)
		in = append(in, record(t, cli, typeApplicationData, nil)...)
	}
	_, _, _, err := openAll(srv, in)
	wantAlert(t, err, AlertUnexpectedMessage)
}

func wantAlert(t *testing.T, err error, alert uint8) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Alert != alert {
		t.Fatalf("got %v, want alert %d", err, alert)
	}
}

func TestFailures(t *testing.T) {
	hdr := func(typ byte, n int) []byte { return []byte{typ, 3, 3, byte(n >> 8), byte(n)} }
	cases := []struct {
		name  string
		input func(cli *Conn) []byte
		alert uint8
	}{
		{"garbage", func(*Conn) []byte { return []byte("GET / HTTP/1.1\r\n\r\n") }, AlertUnexpectedMessage},
		{"plaintext handshake", func(*Conn) []byte { return append(hdr(typeHandshake, 4), 1, 0, 0, 0) }, AlertUnexpectedMessage},
		{"change cipher spec", func(*Conn) []byte { return append(hdr(typeChangeCipherSpec, 1), 1) }, AlertUnexpectedMessage},
		{"bad version", func(*Conn) []byte { return []byte{typeApplicationData, 7, 3, 0, 20} }, AlertDecodeError},
		{"oversized", func(*Conn) []byte { return hdr(typeApplicationData, MaxCiphertext+1) }, AlertRecordOverflow},
		{"too short", func(*Conn) []byte { return append(hdr(typeApplicationData, 3), 1, 2, 3) }, AlertBadRecordMAC},
		{"bad tag", func(c *Conn) []byte {
			r := record(t, c, typeApplicationData, []byte("hi"))
			r[len(r)-1] ^= 1
			return r
		}, AlertBadRecordMAC},
		{"replayed record", func(c *Conn) []byte {
			r := record(t, c, typeApplicationData, []byte("hi"))
			return append(r, r...)
		}, AlertBadRecordMAC},
		{"skipped sequence number", func(c *Conn) []byte {
			c.out.seq++
			return record(t, c, typeApplicationData, []byte("hi"))
		}, AlertBadRecordMAC},
		{"plaintext too long", func(c *Conn) []byte {
			return record(t, c, typeApplicationData, make([]byte, MaxPlaintext+1))
		}, AlertRecordOverflow},
		{"no content type", func(c *Conn) []byte { return record(t, c, 0, nil) }, AlertUnexpectedMessage},
		{"unknown content type", func(c *Conn) []byte { return record(t, c, 99, []byte("x")) }, AlertUnexpectedMessage},
		{"malformed alert", func(c *Conn) []byte { return record(t, c, typeAlert, []byte{1}) }, AlertDecodeError},
		{"empty handshake", func(c *Conn) []byte { return record(t, c, typeHandshake, nil) }, AlertUnexpectedMessage},
		{"renegotiation", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{1, 0, 0, 2, 3, 3})
		}, AlertUnexpectedMessage},
		{"new session ticket", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{handshakeNewTicket, 0, 0, 0})
		}, AlertUnexpectedMessage},
		{"split handshake", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{handshakeKeyUpdate, 0, 0})
		}, AlertUnexpectedMessage},
		{"bad key update", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 2})
		}, AlertIllegalParameter},
		{"long key update", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 2, 0, 0})
		}, AlertDecodeError},
		{"key update not last", func(c *Conn) []byte {
			return record(t, c, typeHandshake, []byte{handshakeKeyUpdate, 0, 0, 1, 0, handshakeKeyUpdate, 0, 0, 1, 0})
		}, AlertUnexpectedMessage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := pair(t, tls.TLS_AES_256_GCM_SHA384)
			_, _, _, err := openAll(srv, tc.input(cli))
			wantAlert(t, err, tc.alert)
			out, err := srv.Seal(nil, [][]byte{[]byte("must not be sent")}, false)
			if err != nil {
				t.Fatal(err)
			}
			// The mirror reads exactly one fatal alert of that code.
			r, err := cli.Open(out)
			if !errors.Is(err, ErrPeerAlert) || r.N != 0 {
				t.Fatalf("the peer got %+v %v", r, err)
			}
		})
	}
}

func TestTruncated(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	rec, _ := cli.Seal(nil, [][]byte{[]byte("truncated")}, false)
	for n := range len(rec) {
		r, err := srv.Open(rec[:n])
		if err != nil || r.N != 0 || r.End != 0 {
			t.Fatalf("%d bytes: %+v %v", n, r, err)
		}
	}
}

func TestPeerAlerts(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	in := record(t, cli, typeApplicationData, []byte("last"))
	in = append(in, record(t, cli, typeAlert, []byte{alertLevelWarning, AlertCloseNotify})...)
	in = append(in, "ignored after close_notify"...)
	pt, r, used, err := openAll(srv, in)
	if err != nil || string(pt) != "last" || !r.Close || used != len(in) {
		t.Fatalf("%q %+v %v", pt, r, err)
	}
	srv, cli = pair(t, tls.TLS_AES_128_GCM_SHA256)
	_, _, _, err = openAll(srv, record(t, cli, typeAlert, []byte{alertLevelFatal, AlertBadRecordMAC}))
	if !errors.Is(err, ErrPeerAlert) {
		t.Fatal(err)
	}
	if out, _ := srv.Seal(nil, nil, true); len(out) != 0 {
		t.Fatal("answered a fatal alert")
	}
}

func TestSequenceExhausted(t *testing.T) {
	srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
	srv.out.seq = 1<<64 - 1
	if _, err := srv.Seal(nil, [][]byte{[]byte("x")}, false); err == nil {
		t.Fatal("sealed with the last sequence number")
	}
	cli.out.seq = 1<<64 - 2
	rec := record(t, cli, typeApplicationData, []byte("x"))
	srv.in.seq = 1<<64 - 1
	_, _, _, err := openAll(srv, rec)
	wantAlert(t, err, AlertInternalError)
}

func TestKeyDerivation(t *testing.T) {
	// RFC 8448 section 3 (simple 1-RTT handshake), server application
	// traffic secret and its derived key and IV (TLS_AES_128_GCM_SHA256).
	secret := unhex(t, "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
	var x half
	if err := x.set(tls.TLS_AES_128_GCM_SHA256, secret); err != nil {
		t.Fatal(err)
	}
	if got, want := x.key[:16], unhex(t, "9f02283b6c9c07efc26bb9f2ac92e356"); !bytes.Equal(got, want) {
		t.Fatalf("key %x, want %x", got, want)
	}
	if got, want := x.iv[:], unhex(t, "cf782b88dd83549aadf1e984"); !bytes.Equal(got, want) {
		t.Fatalf("iv %x, want %x", got, want)
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, ch := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case ch >= '0' && ch <= '9':
				v |= byte(ch - '0')
			default:
				v |= byte(ch-'a') + 10
			}
		}
		b[i] = v
	}
	return b
}

func TestIdleSize(t *testing.T) {
	// The idle state is the Conn alone: keys, IVs, secrets, sequence
	// numbers. Keep it well under the 2 KB per connection budget.
	if n := sizeofConn; n > 320 {
		t.Fatalf("Conn is %d bytes", n)
	}
}

// FuzzRecord feeds arbitrary bytes, after valid records, to Open: it must
// never panic, never report more plaintext than it was given, and either
// fail or use up at most its input.
func FuzzRecord(f *testing.F) {
	_, cli := pair(f, tls.TLS_AES_128_GCM_SHA256)
	good, _ := cli.Seal(nil, [][]byte{[]byte("hello")}, false)
	f.Add(good)
	f.Add([]byte{23, 3, 3, 0x40, 0xff})
	f.Add([]byte{22, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte{20, 3, 3, 0, 1, 1})
	f.Add(append(append([]byte(nil), good...), 23, 3, 3, 0, 17))
	f.Fuzz(func(t *testing.T, in []byte) {
		srv, cli := pair(t, tls.TLS_AES_128_GCM_SHA256)
		pre, _ := cli.Seal(nil, [][]byte{[]byte("prefix")}, false)
		buf := append(pre, in...)
		r, err := srv.Open(buf)
		if err != nil {
			return
		}
		if r.N > r.End || r.End > len(buf) {
			t.Fatalf("result %+v for %d bytes", r, len(buf))
		}
		if string(buf[:6]) != "prefix" || r.N < 6 {
			t.Fatalf("lost the valid record: %+v", r)
		}
		used := srv.Consume(buf, r, r.N)
		if used > len(buf) || used < 0 {
			t.Fatalf("used %d of %d", used, len(buf))
		}
		_, _ = srv.Seal(nil, [][]byte{buf[:r.N]}, true)
	})
}
