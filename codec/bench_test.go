package codec

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-push/herald/pool"
)

var benchSizes = []int{16, 1 << 10, 64 << 10}

func sizeName(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkDecode decodes one text message per op: masked (server role)
// or unmasked (client role), in one frame or four fragments. Each op
// includes copying the frames into the read buffer, as a socket read would,
// and checking the text as UTF-8.
func BenchmarkDecode(b *testing.B) {
	for _, role := range []Role{RoleServer, RoleClient} {
		kind := "masked"
		if role == RoleClient {
			kind = "unmasked"
		}
		for _, size := range benchSizes {
			for _, fragments := range []int{1, 4} {
				name := fmt.Sprintf("%s/%s/frames=%d", kind, sizeName(size), fragments)
				b.Run(name, func(b *testing.B) {
					stream := benchStream(role, size, fragments)
					work := make([]byte, len(stream))
					var d Decoder
					d.Init(&DecoderConfig{Role: role, Buffers: pool.NewBytes()})
					b.SetBytes(int64(size))
					b.ReportAllocs()
					for b.Loop() {
						if decodeOne(&d, work, stream) != size {
							b.Fatal("decode failed")
						}
					}
				})
			}
		}
	}
}

// BenchmarkEncode appends one frame per op into a reused buffer.
func BenchmarkEncode(b *testing.B) {
	for _, masked := range []bool{true, false} {
		kind := "unmasked"
		if masked {
			kind = "masked"
		}
		for _, size := range benchSizes {
			b.Run(kind+"/"+sizeName(size), func(b *testing.B) {
				payload := []byte(strings.Repeat("x", size))
				dst := make([]byte, 0, size+MaxHeaderLen)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if masked {
						dst = AppendMaskedFrame(dst[:0], OpText, true, payload, testKey)
					} else {
						dst = AppendFrame(dst[:0], OpText, true, payload)
					}
				}
			})
		}
	}
}

func BenchmarkValidUTF8(b *testing.B) {
	inputs := []struct {
		name string
		s    string
	}{
		{name: "ascii", s: strings.Repeat("herald push ", 1<<10/12+1)[:1<<10]},
		{name: "mixed", s: strings.Repeat("h\u00e9r\u20acld \U0001F600 ", 1<<10/8)[:1<<10-4]},
	}
	for _, in := range inputs {
		b.Run(in.name+"/1KiB", func(b *testing.B) {
			p := []byte(in.s)
			b.SetBytes(int64(len(p)))
			b.ReportAllocs()
			for b.Loop() {
				ValidUTF8(p)
			}
		})
	}
}

func BenchmarkParseRequest(b *testing.B) {
	// A browser's upgrade, and the same with a JWT of a few hundred bytes
	// in its query, as herald's clients send theirs.
	token := strings.Repeat("eyJhbGciOiJIUzI1NiJ9", 10)
	for _, target := range []string{"/ws?channel=news", "/ws?channel=news&token=" + token} {
		b.Run(fmt.Sprint("target=", len(target)), func(b *testing.B) {
			req := []byte(upgradeRequest("GET "+target+" HTTP/1.1",
				"Origin: https://example.com",
				"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36",
				"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
			dst := make([]byte, 0, 256)
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				r, _, err := ParseRequest(req, HandshakeLimits{})
				if err != nil {
					b.Fatal(err)
				}
				dst = AppendAccept(dst[:0], r, "", "")
			}
		})
	}
}
