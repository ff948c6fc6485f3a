package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-push/herald/hub"
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

// encoded publishes data to channel on a hub with the App's Encoder and
// returns the message, whose Frames it built.
func encoded(t *testing.T, channel string, data []byte) *hub.Message {
	t.Helper()
	m, err := hub.New(hub.Config{Encoder: Encoder{}}).Publish(channel, data)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if _, ok := m.Frames.(*Frames); !ok {
		t.Fatalf("message frames %T, want *Frames", m.Frames)
	}
	return m
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
			m := encoded(t, tc.channel, []byte(tc.payload))
			f := readFrame(t, framesOf(m).Envelope.Bytes())
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
			in := bytes.Clone(tc.payload)
			m := encoded(t, "c", in)
			for i := range in {
				in[i] = '!' // the payload must have been copied
			}
			f := readFrame(t, framesOf(m).Raw.Bytes())
			if f.Header.OpCode != tc.op {
				t.Fatalf("opcode %v, want %v", f.Header.OpCode, tc.op)
			}
			if !bytes.Equal(f.Payload, tc.payload) || !bytes.Equal(m.Data, tc.payload) {
				t.Fatalf("payload %q, Data %q, want %q", f.Payload, m.Data, tc.payload)
			}
		})
	}
}

// TestFrameLimit: Encoder.MaxFrame refuses, with hub.ErrTooLarge, the
// payloads whose larger frame would not fit, and admits the largest valid
// JSON payload MaxEnvelopeFrame allows on the longest channel name.
func TestFrameLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	h := hub.New(hub.Config{Encoder: Encoder{MaxFrame: limit}})
	room := 0
	for MaxEnvelopeFrame(room+1) <= limit {
		room++
	}
	ok := `"` + strings.Repeat("x", room-2) + `"`
	name := strings.Repeat("n", hub.MaxChannelLen)
	m, err := h.Publish(name, []byte(ok))
	if err != nil {
		t.Fatalf("payload of %d bytes within MaxEnvelopeFrame: %v", room, err)
	}
	if f := framesOf(m); f.Envelope.Len() > limit || f.Raw.Len() > limit {
		t.Fatalf("frames of %d and %d bytes over the limit %d", f.Envelope.Len(), f.Raw.Len(), limit)
	}
	// Control characters escape to six bytes each: 200 of them do not fit.
	if _, err := h.Publish("a", make([]byte, 200)); !errors.Is(err, hub.ErrTooLarge) {
		t.Fatalf("escaped payload: %v, want ErrTooLarge", err)
	}
	if err := h.Check("a", make([]byte, 200)); !errors.Is(err, hub.ErrTooLarge) {
		t.Fatalf("Check: %v, want ErrTooLarge", err)
	}
	if err := h.Check("a", make([]byte, 100)); err != nil {
		t.Fatalf("Check of 100 escaped bytes: %v", err)
	}
	if s := h.Stats(); s.TooLarge != 2 {
		t.Fatalf("TooLarge = %d, want 2", s.TooLarge)
	}
}

// TestFrameLenExact checks the bound against real encodings.
func TestFrameLenExact(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "x", `{"a":1}`, "a\"b\\c\n\x01\xff\u00e9", strings.Repeat("\x00", 300)} {
		m := encoded(t, `q"\`, []byte(data))
		got := frameLen(`q"\`, []byte(data), json.Valid([]byte(data)))
		want := max(framesOf(m).Envelope.Len(), framesOf(m).Raw.Len())
		if got < want || got > want+maxOffsetDigits {
			t.Errorf("%q: frameLen %d, frames %d", data, got, want)
		}
	}
}

// TestEncodeAllocs: the Encoder builds a message's frames in two
// allocations (the frames' bytes and their holder), so a publish costs a
// fixed few whatever the number of subscribers.
func TestEncodeAllocs(t *testing.T) {
	data := []byte(`{"price":42}`)
	note, err := Encoder{}.Check("c", data)
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(200, func() {
		m := hub.Message{Channel: "c", Offset: 7, Data: data}
		Encoder{}.Encode(&m, note)
	})
	if allocs > 2 {
		t.Fatalf("%v allocs per encode, want at most 2", allocs)
	}
}

// TestMsgFrame: Session.Send's frame is {"op":"msg","data":...} with JSON
// data inlined and anything else as a JSON string.
func TestMsgFrame(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a":1}`: `{"op":"msg","data":{"a":1}}`,
		`42`:      `{"op":"msg","data":42}`,
		"text":    `{"op":"msg","data":"text"}`,
		"a\"b":    `{"op":"msg","data":"a\"b"}`,
	} {
		f := readFrame(t, appendMsgFrame(nil, []byte(in)))
		if f.Header.OpCode != ws.OpText || string(f.Payload) != want {
			t.Errorf("%q: op %v %s, want text %s", in, f.Header.OpCode, f.Payload, want)
		}
	}
}
