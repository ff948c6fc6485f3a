package server

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestTLSPartialRecordMessageTimeout: on the loop engine, a wss client
// that leaves a TLS record unfinished is closed like one that leaves a
// WebSocket message unfinished: 1008 "message timeout" in a record, then
// close_notify, counted in MessageTimeouts.
func TestTLSPartialRecordMessageTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	certFile, keyFile, pool := writeTestCert(t)
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.MessageTimeout = Duration(200 * time.Millisecond)
	s := startServer(t, cfg, newRecorder())
	tcp, err := net.Dial("tcp", s.TLSAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tc := tls.Client(tcp, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}})
	_ = tc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(tc, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade over TLS: %v, %v", resp, err)
	}
	if st := s.Stats().TLS; st == nil || st.OnLoop != 1 {
		t.Fatalf("TLS stats %+v: want the connection on the loop engine", st)
	}
	// A record header announcing 16400 bytes, and 100 of them: the record
	// never completes, so it is never decrypted.
	partial := append([]byte{23, 3, 3, 0x40, 0x10}, make([]byte, 100)...)
	start := time.Now()
	if _, err := tcp.Write(partial); err != nil {
		t.Fatal(err)
	}
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatalf("waiting for the close frame: %v", err)
	}
	if hdr[0] != 0x88 || hdr[1] > 125 {
		t.Fatalf("frame header % x, want a close frame", hdr)
	}
	body := make([]byte, hdr[1])
	if _, err := io.ReadFull(br, body); err != nil || len(body) < 2 {
		t.Fatalf("close frame body %q: %v", body, err)
	}
	if code, reason := binary.BigEndian.Uint16(body), string(body[2:]); code != 1008 || reason != "message timeout" {
		t.Fatalf("close %d %q, want 1008 \"message timeout\"", code, reason)
	}
	if took := time.Since(start); took < 150*time.Millisecond || took > testTimeout {
		t.Errorf("closed after %v, want about the 200ms message timeout", took)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the close frame: %v, want io.EOF (close_notify)", err)
	}
	if n := s.Stats().MessageTimeouts; n != 1 {
		t.Errorf("MessageTimeouts = %d, want 1", n)
	}
}
