package e2e

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/auth"
)

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func websocketDial(u string) (*websocket.Conn, *http.Response, error) {
	return websocket.DefaultDialer.Dial(u, nil)
}

func signWith(t *testing.T, key []byte, sub string) string {
	t.Helper()
	tok, err := auth.Sign(key, auth.TokenSpec{Subject: sub, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
