package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// The Pusher app every Pusher node of these tests serves.
const (
	pusherAppID  = "1"
	pusherKey    = "cluster-key"
	pusherSecret = "cluster-secret"
)

// eventWait bounds every wait for a Pusher frame: generous, for a loaded
// machine; a test that passes never waits for it.
const eventWait = 20 * time.Second

// startPusherNode starts herald with the NATS broker and the Pusher app.
func startPusherNode(t *testing.T, name, natsURL string, extra ...string) *node {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(pusherSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--pusher-app-id", pusherAppID, "--pusher-key", pusherKey, "--pusher-secret-file", secret}, extra...)
	n := startNode(t, name, natsURL, args...)
	waitReady(t, n, true, 10*time.Second)
	return n
}

// frame is one Pusher message from the server.
type frame struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
	UserID  string          `json:"user_id"`
}

// text is the frame's data as a string: a JSON string's value, else the
// JSON text itself.
func (f frame) text() string {
	var s string
	if json.Unmarshal(f.Data, &s) == nil {
		return s
	}
	return string(f.Data)
}

// pclient is one Pusher connection; a goroutine reads its frames into
// frames, which closes when the connection ends.
type pclient struct {
	t      *testing.T
	name   string
	conn   *websocket.Conn
	sid    string
	frames chan frame
	// closeCode is the server's close code, set before frames closes.
	closeCode int
}

// pconnect opens a Pusher connection to n and reads
// pusher:connection_established.
func pconnect(t *testing.T, n *node, name string) *pclient {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(n.WS+"/app/"+pusherKey+"?protocol=7&client=go&version=1", nil)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, n.name, err)
	}
	c := &pclient{t: t, name: name, conn: conn, frames: make(chan frame, 1024)}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(c.frames)
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					c.closeCode = ce.Code
				}
				return
			}
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				continue
			}
			c.frames <- f
		}
	}()
	f := c.next()
	if f.Event != "pusher:connection_established" {
		t.Fatalf("%s: first frame %+v", name, f)
	}
	var est struct {
		SocketID string `json:"socket_id"`
	}
	if err := json.Unmarshal([]byte(f.text()), &est); err != nil || est.SocketID == "" {
		t.Fatalf("%s: connection_established %s: %v", name, f.Data, err)
	}
	c.sid = est.SocketID
	return c
}

// next returns the next frame, failing the test if none comes in time.
func (c *pclient) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("%s: connection closed", c.name)
		}
		return f
	case <-time.After(eventWait):
		c.t.Fatalf("%s: no frame within %v", c.name, eventWait)
	}
	return frame{}
}

// until skips frames until one with event (on channel, when not empty).
func (c *pclient) until(event, channel string) frame {
	c.t.Helper()
	for {
		if f := c.next(); f.Event == event && (channel == "" || f.Channel == channel) {
			return f
		}
	}
}

// onChannel returns the next frame of channel that is no pusher_internal
// or pusher: message.
func (c *pclient) onChannel(channel string) frame {
	c.t.Helper()
	for {
		f := c.next()
		if f.Channel == channel && !strings.HasPrefix(f.Event, "pusher") {
			return f
		}
	}
}

// expectClose skips frames until the connection ends and checks the
// server's close code.
func (c *pclient) expectClose(code int) {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				if c.closeCode != code {
					c.t.Fatalf("%s: closed with %d, want %d", c.name, c.closeCode, code)
				}
				return
			}
		case <-time.After(eventWait):
			c.t.Fatalf("%s: not closed within %v", c.name, eventWait)
		}
	}
}

// signin signs the connection in as user id.
func (c *pclient) signin(id string) {
	c.t.Helper()
	ud := `{"id":"` + id + `"}`
	c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": pusherKey + ":" + sign(c.sid+"::user::"+ud), "user_data": ud}})
	c.until("pusher:signin_success", "")
}

// send writes a client message.
func (c *pclient) send(msg any) {
	c.t.Helper()
	if err := c.conn.WriteJSON(msg); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// sign is the hex HMAC-SHA256 of msg with the app's secret.
func sign(msg string) string {
	m := hmac.New(sha256.New, []byte(pusherSecret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// subscribe sends pusher:subscribe for ch, signed for private and
// presence channels (channelData: the presence member).
func (c *pclient) subscribe(ch, channelData string) {
	c.t.Helper()
	d := map[string]any{"channel": ch}
	switch {
	case strings.HasPrefix(ch, "presence-"):
		d["auth"] = pusherKey + ":" + sign(c.sid+":"+ch+":"+channelData)
		d["channel_data"] = channelData
	case strings.HasPrefix(ch, "private-"):
		d["auth"] = pusherKey + ":" + sign(c.sid+":"+ch)
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": d})
}

// subscribed subscribes and returns subscription_succeeded's data.
func (c *pclient) subscribed(ch, channelData string) frame {
	c.t.Helper()
	c.subscribe(ch, channelData)
	return c.until("pusher_internal:subscription_succeeded", ch)
}

// presenceList decodes a subscription_succeeded's member ids (sorted)
// and count.
func presenceList(t *testing.T, f frame) ([]string, int) {
	t.Helper()
	var d struct {
		Presence struct {
			IDs   []string `json:"ids"`
			Count int      `json:"count"`
		} `json:"presence"`
	}
	if err := json.Unmarshal([]byte(f.text()), &d); err != nil {
		t.Fatalf("subscription_succeeded data %s: %v", f.Data, err)
	}
	sort.Strings(d.Presence.IDs)
	return d.Presence.IDs, d.Presence.Count
}

// memberID is the user_id of a member_added or member_removed frame.
func memberID(t *testing.T, f frame) string {
	t.Helper()
	var d struct {
		UserID string `json:"user_id"`
	}
	if err := json.Unmarshal([]byte(f.text()), &d); err != nil {
		t.Fatalf("%s data %s: %v", f.Event, f.Data, err)
	}
	return d.UserID
}

// papi sends a signed request of the Pusher HTTP API to n: body (nil for
// a GET) is sent as JSON, query holds a GET's parameters.
func papi(t *testing.T, n *node, method, path string, query url.Values, body any) (int, string) {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("auth_key", pusherKey)
	q.Set("auth_timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	q.Set("auth_version", "1.0")
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
		sum := md5.Sum(b)
		q.Set("body_md5", hex.EncodeToString(sum[:]))
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + q.Get(k)
	}
	q.Set("auth_signature", sign(method+"\n"+path+"\n"+strings.Join(parts, "&")))
	req, err := http.NewRequest(method, n.API+path+"?"+q.Encode(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// trigger triggers event with data on ch through n's API (socketID, when
// set, excluded) and fails the test unless it is taken.
func trigger(t *testing.T, n *node, ch, event, data, socketID string) {
	t.Helper()
	body := map[string]any{"name": event, "channel": ch, "data": data}
	if socketID != "" {
		body["socket_id"] = socketID
	}
	if st, out := papi(t, n, "POST", "/apps/"+pusherAppID+"/events", nil, body); st != http.StatusOK {
		t.Fatalf("trigger on %s: %d %s", n.name, st, out)
	}
}

// expectEvent reads c's next event of ch and checks its name and data.
func (c *pclient) expectEvent(ch, event, data string) {
	c.t.Helper()
	f := c.onChannel(ch)
	if f.Event != event || f.text() != data {
		c.t.Fatalf("%s: got %s %q on %s, want %s %q", c.name, f.Event, f.text(), f.Channel, event, data)
	}
}

// String names the client in failures.
func (c *pclient) String() string { return fmt.Sprintf("%s (%s)", c.name, c.sid) }
