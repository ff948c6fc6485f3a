package codec

import (
	"encoding/binary"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidCloseCode(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		code uint16
		want bool
	}{
		{code: 0, want: false},
		{code: 999, want: false},
		{code: CloseNormal, want: true},
		{code: CloseGoingAway, want: true},
		{code: CloseProtocolError, want: true},
		{code: CloseUnsupported, want: true},
		{code: 1004, want: false},
		{code: CloseNoStatus, want: false},
		{code: CloseAbnormal, want: false},
		{code: CloseInvalidPayload, want: true},
		{code: ClosePolicyViolation, want: true},
		{code: CloseMessageTooBig, want: true},
		{code: CloseMandatoryExtension, want: true},
		{code: CloseInternalError, want: true},
		{code: CloseServiceRestart, want: true},
		{code: CloseTryAgainLater, want: true},
		{code: CloseBadGateway, want: true},
		{code: 1015, want: false},
		{code: 1016, want: false},
		{code: 2999, want: false},
		{code: 3000, want: true},
		{code: 4999, want: true},
		{code: 5000, want: false},
		{code: 65535, want: false},
	}
	for _, tc := range testCases {
		if got := ValidCloseCode(tc.code); got != tc.want {
			t.Errorf(
				"ValidCloseCode(%d) = %v, want %v",
				tc.code, got, tc.want)
		}
	}
}

func TestAppendClose(t *testing.T) {
	t.Parallel()
	euros := strings.Repeat("\u20ac", 50) // 150 bytes, 3 per code point
	testCases := []struct {
		name       string
		code       uint16
		reason     string
		wantCode   uint16 // as the peer decodes it
		wantReason string
	}{
		{name: "code and reason", code: CloseNormal, reason: "bye", wantCode: CloseNormal, wantReason: "bye"},
		{name: "code only", code: CloseGoingAway, wantCode: CloseGoingAway},
		{name: "private code", code: 4000, reason: "x", wantCode: 4000, wantReason: "x"},
		{name: "no status sends empty payload", code: CloseNoStatus, reason: "ignored", wantCode: CloseNoStatus},
		{name: "abnormal sends empty payload", code: CloseAbnormal, wantCode: CloseNoStatus},
		{name: "zero sends empty payload", code: 0, wantCode: CloseNoStatus},
		{
			name: "long ascii reason is cut to 123 bytes", code: CloseNormal,
			reason: strings.Repeat("a", 300), wantCode: CloseNormal, wantReason: strings.Repeat("a", 123),
		},
		{
			name: "long reason is cut on a code point boundary", code: CloseNormal,
			reason: euros, wantCode: CloseNormal, wantReason: strings.Repeat("\u20ac", 41),
		},
		{name: "invalid reason is dropped", code: CloseNormal, reason: "a\xffb", wantCode: CloseNormal},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, masked := range []bool{false, true} {
				var wire []byte
				cfg := &DecoderConfig{Role: RoleClient}
				if masked {
					wire = AppendMaskedClose([]byte("prefix"), tc.code, tc.reason, testKey)
					cfg = &DecoderConfig{Role: RoleServer}
				} else {
					wire = AppendClose([]byte("prefix"), tc.code, tc.reason)
				}
				if string(wire[:6]) != "prefix" {
					t.Fatal("dst prefix overwritten")
				}
				if got := len(wire) - 6 - FrameHeaderLen(0, masked); got > MaxControlPayload {
					t.Fatalf(
						"close payload of %d bytes",
						got)
				}
				got, err := decodeWith(cfg, wire[6:], whole)
				if err != nil || len(got) != 1 {
					t.Fatalf(
						"masked=%v: decode: %v, %v",
						masked, got, err)
				}
				if got[0].closeCode != tc.wantCode || got[0].closeReason != tc.wantReason {
					t.Errorf(
						"masked=%v: close %d %q, want %d %q",
						masked, got[0].closeCode, got[0].closeReason, tc.wantCode, tc.wantReason)
				}
				if !utf8.ValidString(got[0].closeReason) {
					t.Errorf(
						"masked=%v: reason not UTF-8",
						masked)
				}
			}
		})
	}
}

func TestParseClose(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name       string
		payload    []byte
		wantCode   uint16
		wantReason string
		wantErr    uint16
	}{
		{name: "empty", payload: nil, wantCode: CloseNoStatus},
		{name: "one byte", payload: []byte{0x03}, wantErr: CloseProtocolError},
		{name: "code", payload: binary.BigEndian.AppendUint16(nil, 1000), wantCode: 1000},
		{name: "code and reason", payload: append(binary.BigEndian.AppendUint16(nil, 3001), "why"...), wantCode: 3001, wantReason: "why"},
		{name: "1005 on the wire", payload: binary.BigEndian.AppendUint16(nil, 1005), wantErr: CloseProtocolError},
		{name: "bad reason", payload: append(binary.BigEndian.AppendUint16(nil, 1000), 0xc0, 0xaf), wantErr: CloseInvalidPayload},
	}
	for _, tc := range testCases {
		code, reason, err := parseClose(tc.payload)
		if got := closeCode(t, err); got != tc.wantErr {
			t.Errorf(
				"%s: error %v, want code %d",
				tc.name, err, tc.wantErr)
			continue
		}
		if err == nil && (code != tc.wantCode || string(reason) != tc.wantReason) {
			t.Errorf(
				"%s: %d %q, want %d %q",
				tc.name, code, reason, tc.wantCode, tc.wantReason)
		}
	}
}
