package hub

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// readFrame decodes the one complete frame in b with gobwas/ws, an
// independent decoder, and checks it is final and unmasked with nothing
// after it.
func readFrame(t *testing.T, b []byte) ws.Frame {
	t.Helper()
	r := bytes.NewReader(b)
	//lint:ignore SA1019 the frame comes from our own encoder, in memory: its length is trusted
	f, err := ws.ReadFrame(r)
	if err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	if !f.Header.Fin || f.Header.Masked || f.Header.Rsv != 0 {
		t.Fatalf("header %+v: want final, unmasked, no RSV bits", f.Header)
	}
	if rest, _ := io.ReadAll(r); len(rest) != 0 {
		t.Fatalf("%d bytes after the frame", len(rest))
	}
	return f
}

func TestEnvelope(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 70000) // needs the 64-bit length form
	tests := []struct {
		name    string
		channel string
		payload string
		inline  bool // data is the payload itself, not a string
	}{
		{name: "object", channel: "news", payload: `{"headline":"hi","n":[1,2]}`, inline: true},
		{name: "number", channel: "news", payload: `42`, inline: true},
		{name: "json string", channel: "news", payload: `"quoted"`, inline: true},
		{name: "json with spaces", channel: "news", payload: " [1, 2] \n", inline: true},
		{name: "plain text", channel: "chat.room-1", payload: "hello world"},
		{name: "text needing escapes", channel: "news", payload: "a \"quote\" \\ back\nline\ttab\x01\x1f"},
		{name: "unicode text", channel: "news", payload: "héllo → 世界 \u2028"},
		{name: "invalid utf-8", channel: "news", payload: "ok\xff\xfe then \xc3"},
		{name: "empty", channel: "news", payload: ""},
		{name: "medium", channel: "news", payload: strings.Repeat("y", 300)},
		{name: "large", channel: "news", payload: big},
		{name: "name with quote", channel: `we"ird\name`, payload: "1", inline: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Config{})
			m := mustPublish(t, h, tc.channel, tc.payload)
			f := readFrame(t, m.Envelope())
			if f.Header.OpCode != ws.OpText {
				t.Fatalf("opcode %v, want text", f.Header.OpCode)
			}
			var env struct {
				Channel string          `json:"channel"`
				Offset  uint64          `json:"offset"`
				Data    json.RawMessage `json:"data"`
			}
			dec := json.NewDecoder(bytes.NewReader(f.Payload))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&env); err != nil {
				t.Fatalf("envelope %q is not JSON: %v", f.Payload, err)
			}
			if env.Channel != tc.channel || env.Offset != 1 {
				t.Fatalf("channel %q offset %d, want %q 1", env.Channel, env.Offset, tc.channel)
			}
			if tc.inline {
				if want := strings.TrimSpace(tc.payload); string(env.Data) != want {
					t.Fatalf("data %s, want %s inlined", env.Data, want)
				}
				return
			}
			var got string
			if err := json.Unmarshal(env.Data, &got); err != nil {
				t.Fatalf("data %s is not a JSON string: %v", env.Data, err)
			}
			// encoding/json is the reference for strings: same text,
			// same replacement of invalid bytes.
			ref, _ := json.Marshal(tc.payload)
			var want string
			_ = json.Unmarshal(ref, &want)
			if got != want {
				t.Fatalf("data decodes to %q, want %q", got, want)
			}
		})
	}
}

func TestRawFrame(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload []byte
		op      ws.OpCode
	}{
		{name: "ascii", payload: []byte("hello"), op: ws.OpText},
		{name: "json", payload: []byte(`{"a":1}`), op: ws.OpText},
		{name: "utf-8", payload: []byte("世界"), op: ws.OpText},
		{name: "empty", payload: nil, op: ws.OpText},
		{name: "invalid utf-8", payload: []byte{'a', 0xff}, op: ws.OpBinary},
		{name: "binary", payload: []byte{0, 1, 2, 0x80, 0xc0}, op: ws.OpBinary},
		{name: "long binary", payload: bytes.Repeat([]byte{0xfe}, 1000), op: ws.OpBinary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Config{})
			in := bytes.Clone(tc.payload)
			m, err := h.Publish("c", in)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				in[i] = '!' // the hub must have copied the payload
			}
			f := readFrame(t, m.Raw())
			if f.Header.OpCode != tc.op {
				t.Fatalf("opcode %v, want %v", f.Header.OpCode, tc.op)
			}
			if !bytes.Equal(f.Payload, tc.payload) || !bytes.Equal(m.Data, tc.payload) {
				t.Fatalf("payload %q, Data %q, want %q", f.Payload, m.Data, tc.payload)
			}
		})
	}
}

func TestValidChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"simple", "news", true},
		{"personal", "user:alice", true},
		{"punctuation", "chat.room-1", true},
		{"all printable", "!~#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}", true},
		{"longest", strings.Repeat("a", 255), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 256), false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"newline", "a\n", false},
		{"del", "a\x7f", false},
		{"non-ascii", "café", false},
		{"nul", "a\x00", false},
	}
	for _, tc := range tests {
		if got := ValidChannel(tc.in); got != tc.want {
			t.Errorf("%s: ValidChannel(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}
