// Package clientjs embeds herald.js, the browser client of herald's client
// protocol, so that a node can serve it at /herald.js without a build step
// or a file on disk. The canonical source is herald.js in this directory;
// README.md documents its JavaScript API.
package clientjs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	_ "embed"
)

//go:embed herald.js
var script []byte

// Script returns a copy of herald.js.
func Script() []byte { return bytes.Clone(script) }

// Handler returns an http.Handler serving herald.js with a strong ETag, so
// browsers revalidate it cheaply (Cache-Control: no-cache) and always run
// the copy built into the server they talk to. It is safe for concurrent
// use.
func Handler() http.Handler {
	sum := sha256.Sum256(script)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		h.Set("X-Content-Type-Options", "nosniff")
		http.ServeContent(w, r, "herald.js", time.Time{}, bytes.NewReader(script))
	})
}
