package codec

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"testing"

	"github.com/klauspost/compress/flate"

	"github.com/herald-push/herald/pool"
)

// BenchmarkDeflate compares klauspost/compress/flate, which Deflate uses,
// with the standard library's compress/flate, both pooled the same way, on
// JSON payloads compressed as one message without context takeover and
// inflated back.
func BenchmarkDeflate(b *testing.B) {
	json := testPayloads()["json-150k"]
	for _, size := range []int{256, 1024, 16 << 10} {
		payload := json[:size]
		compressed := stdDeflate(b, payload)
		b.Run("compress/klauspost/"+sizeName(size), func(b *testing.B) {
			z, _ := NewDeflate(DeflateConfig{})
			dst := make([]byte, 0, 2*size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				dst = z.AppendFrame(dst[:0], OpText, payload, 15)
			}
			b.ReportMetric(float64(len(dst))/float64(size), "ratio")
		})
		b.Run("compress/stdlib/"+sizeName(size), func(b *testing.B) {
			var out bytes.Buffer
			w, _ := stdflate.NewWriter(&out, DefaultDeflateLevel)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Reset(&out)
				w.Write(payload)
				w.Flush()
			}
			b.ReportMetric(float64(out.Len()-4)/float64(size), "ratio")
		})
		b.Run("inflate/klauspost/"+sizeName(size), func(b *testing.B) {
			z, _ := NewDeflate(DeflateConfig{Buffers: pool.NewBytes()})
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				out, err := z.Inflate(compressed, true)
				if err != nil {
					b.Fatal(err)
				}
				z.Release(out)
			}
		})
		b.Run("inflate/stdlib/"+sizeName(size), func(b *testing.B) {
			var src messageReader
			r := stdflate.NewReader(&src)
			out := make([]byte, 0, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				src = messageReader{msg: compressed}
				r.(flate.Resetter).Reset(&src, nil)
				buf := bytes.NewBuffer(out[:0])
				if _, err := io.Copy(buf, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
