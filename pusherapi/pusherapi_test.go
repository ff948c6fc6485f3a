package pusherapi

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/pusher"
)

// The credentials of Pusher's worked example in its HTTP API reference.
const (
	appID  = "3"
	key    = "278d425bdf160c739803"
	secret = "7ad3773142a6692b25b8"
	// docTime is the example's auth_timestamp.
	docTime = 1353088179
)

// fakeService records what the handler asks of the node.
type fakeService struct {
	mu         sync.Mutex
	triggered  []pusher.Event
	terminated []string
	prefixes   []string
	channels   map[string]pusher.ChannelInfo
	users      map[string][]string
	err        error // returned by every call when set
}

func newFake() *fakeService {
	return &fakeService{
		channels: map[string]pusher.ChannelInfo{
			"news":           {Occupied: true, SubscriptionCount: 3},
			"news-eu":        {Occupied: true, SubscriptionCount: 1},
			"presence-room":  {Occupied: true, UserCount: 2, SubscriptionCount: 5},
			"presence-lobby": {Occupied: true, UserCount: 1, SubscriptionCount: 1},
		},
		users: map[string][]string{"presence-room": {"alice", "bob"}},
	}
}

func (f *fakeService) App(id string) (pusher.App, bool) {
	if id != appID {
		return pusher.App{}, false
	}
	return pusher.App{ID: appID, Key: key, Secret: secret}, true
}

func (f *fakeService) Trigger(app string, ev pusher.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.triggered = append(f.triggered, ev)
	return nil
}

func (f *fakeService) Channels(app, prefix string) (map[string]pusher.ChannelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.prefixes = append(f.prefixes, prefix)
	out := map[string]pusher.ChannelInfo{}
	for name, ci := range f.channels {
		if strings.HasPrefix(name, prefix) {
			out[name] = ci
		}
	}
	return out, nil
}

func (f *fakeService) Channel(app, name string) (pusher.ChannelInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return pusher.ChannelInfo{}, f.err
	}
	return f.channels[name], nil
}

func (f *fakeService) Users(app, channel string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.users[channel], nil
}

func (f *fakeService) TerminateUser(app, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.terminated = append(f.terminated, user)
	return nil
}

func (f *fakeService) events() []pusher.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pusher.Event(nil), f.triggered...)
}

// signedQuery signs a request the way Pusher's libraries do, written out
// here rather than through the package's signer: params (auth_* added
// unless already set) sorted by key and joined unescaped; the query sent
// has the same pairs, escaped only where a value needs it.
func signedQuery(method, path, body string, params map[string]string, ts int64, sec string) string {
	p := map[string]string{"auth_key": key, "auth_timestamp": strconv.FormatInt(ts, 10), "auth_version": "1.0"}
	if body != "" {
		sum := md5.Sum([]byte(body))
		p["body_md5"] = hex.EncodeToString(sum[:])
	}
	for k, v := range params {
		p[k] = v
	}
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + p[k]
	}
	m := hmac.New(sha256.New, []byte(sec))
	m.Write([]byte(method + "\n" + path + "\n" + strings.Join(pairs, "&")))
	for i, k := range keys {
		pairs[i] = k + "=" + strings.ReplaceAll(p[k], " ", "%20")
	}
	return strings.Join(pairs, "&") + "&auth_signature=" + hex.EncodeToString(m.Sum(nil))
}

// fixedNow is the handler's clock in tests.
func fixedNow() time.Time { return time.Unix(docTime, 0) }

func newHandler(f *fakeService, o Options) http.Handler {
	if o.Now == nil {
		o.Now = fixedNow
	}
	return NewHandler(f, o)
}

// do sends method path?query with body through h.
func do(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// signed sends a correctly signed request.
func signed(h http.Handler, method, path, body string, params map[string]string) *httptest.ResponseRecorder {
	return do(h, method, path+"?"+signedQuery(method, path, body, params, docTime, secret), body)
}

// TestGoldenSignatures replays requests whose signatures were computed
// outside this package (Pusher's worked example, and HMAC-SHA256 digests
// made with openssl over the strings shown).
func TestGoldenSignatures(t *testing.T) {
	t.Parallel()
	docBody := `{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`
	cases := []struct {
		name, method, target, body string
		// stringToSign documents what the signature covers.
		stringToSign string
	}{
		{
			"Pusher's worked example", "POST",
			"/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c",
			docBody,
			"POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f",
		},
		{
			"channels query, comma raw", "GET",
			"/apps/3/channels?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count&auth_signature=ff97d40ab3fbbd15394386a29c12998c33635305357b2e2abd18dc67efe3f87d",
			"",
			"GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count",
		},
		{
			"channels query, comma escaped, keys reordered and upper-case", "GET",
			"/apps/3/channels?Info=user_count%2Csubscription_count&auth_signature=FF97D40AB3FBBD15394386A29C12998C33635305357B2E2ABD18DC67EFE3F87D&filter_by_prefix=presence-&auth_version=1.0&auth_timestamp=1353088179&auth_key=278d425bdf160c739803",
			"",
			"GET\n/apps/3/channels\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=user_count,subscription_count",
		},
		{
			"terminate, user id escaped on the wire, signed decoded", "POST",
			"/apps/3/users/u%201/terminate_connections?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=8b02fa5c413c4f47396086c5df755ac659b1097ae2b97cca6bd583d925d5699d",
			"{}",
			"POST\n/apps/3/users/u 1/terminate_connections\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=99914b932bd37a50b983c5e7c90ae93b",
		},
	}
	for _, tc := range cases {
		f := newFake()
		w := do(newHandler(f, Options{}), tc.method, tc.target, tc.body)
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d: %s", tc.name, w.Code, w.Body)
		}
	}
	// The example's event arrived as Pusher describes it.
	f := newFake()
	do(newHandler(f, Options{}), cases[0].method, cases[0].target, cases[0].body)
	want := []pusher.Event{{Name: "foo", Channels: []string{"project-3"}, Data: `{"some":"data"}`}}
	if got := f.events(); !reflect.DeepEqual(got, want) {
		t.Errorf("triggered %+v, want %+v", got, want)
	}
	// The test's own signer agrees with the golden vectors.
	for _, tc := range cases {
		parts := strings.SplitN(tc.stringToSign, "\n", 3)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(tc.stringToSign))
		if sig := hex.EncodeToString(m.Sum(nil)); !strings.Contains(strings.ToLower(tc.target), sig) {
			t.Errorf("%s: HMAC of the string to sign is %s, not in the target", tc.name, sig)
		}
		if parts[0] != tc.method {
			t.Errorf("%s: string to sign starts with %q", tc.name, parts[0])
		}
	}
}

func TestSigningFailures(t *testing.T) {
	t.Parallel()
	body := `{"name":"e","channel":"news","data":"x"}`
	path := "/apps/3/events"
	good := signedQuery("POST", path, body, nil, docTime, secret)
	cases := []struct {
		name, target, body string
		o                  Options
		want               int
		msg                string // in the plain-text answer
	}{
		{"good", path + "?" + good, body, Options{}, 200, ""},
		{"unknown app", "/apps/4/events?" + signedQuery("POST", "/apps/4/events", body, nil, docTime, secret), body, Options{}, 404, "Unknown app"},
		{"wrong secret", path + "?" + signedQuery("POST", path, body, nil, docTime, "not-the-secret"), body, Options{}, 401, "Invalid signature"},
		{"signature over another path", path + "?" + signedQuery("POST", "/apps/3/batch_events", body, nil, docTime, secret), body, Options{}, 401, "Invalid signature"},
		{"signature over another method", path + "?" + signedQuery("GET", path, body, nil, docTime, secret), body, Options{}, 401, "Invalid signature"},
		{"signature not hex", path + "?" + strings.Replace(good, "auth_signature=", "auth_signature=zz", 1), body, Options{}, 401, "Invalid signature"},
		{"signature missing", path + "?" + good[:strings.Index(good, "&auth_signature=")], body, Options{}, 401, "Missing auth_signature"},
		{"wrong key", path + "?" + signedQuery("POST", path, body, map[string]string{"auth_key": "otherkey"}, docTime, secret), body, Options{}, 401, "Unknown auth_key"},
		{"stale timestamp", path + "?" + signedQuery("POST", path, body, nil, docTime-601, secret), body, Options{}, 401, "Timestamp expired"},
		{"future timestamp", path + "?" + signedQuery("POST", path, body, nil, docTime+601, secret), body, Options{}, 401, "Timestamp expired"},
		{"edge of the window", path + "?" + signedQuery("POST", path, body, nil, docTime-600, secret), body, Options{}, 200, ""},
		{"wider window", path + "?" + signedQuery("POST", path, body, nil, docTime-900, secret), body, Options{TimestampWindow: 1000 * time.Second}, 200, ""},
		{"narrower window", path + "?" + signedQuery("POST", path, body, nil, docTime-60, secret), body, Options{TimestampWindow: 30 * time.Second}, 401, "Timestamp expired"},
		{"timestamp not a number", path + "?" + signedQuery("POST", path, body, map[string]string{"auth_timestamp": "soon"}, docTime, secret), body, Options{}, 401, "Invalid auth_timestamp"},
		{"auth_version 2.0", path + "?" + signedQuery("POST", path, body, map[string]string{"auth_version": "2.0"}, docTime, secret), body, Options{}, 401, "auth_version"},
		{"body changed after signing", path + "?" + good, strings.Replace(body, `"x"`, `"y"`, 1), Options{}, 401, "MD5"},
		{"body_md5 wrong", path + "?" + signedQuery("POST", path, body, map[string]string{"body_md5": "00000000000000000000000000000000"}, docTime, secret), body, Options{}, 401, "MD5"},
		{"body_md5 missing", path + "?" + signedQuery("POST", path, "", nil, docTime, secret), body, Options{}, 401, "Missing body_md5"},
		{"parameter twice", path + "?" + good + "&auth_key=" + key, body, Options{}, 400, "more than once"},
	}
	for _, tc := range cases {
		f := newFake()
		w := do(newHandler(f, tc.o), "POST", tc.target, tc.body)
		if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: %d %q, want %d with %q", tc.name, w.Code, w.Body, tc.want, tc.msg)
		}
		if tc.want != 200 && len(f.events()) != 0 {
			t.Errorf("%s: refused, yet %d events triggered", tc.name, len(f.events()))
		}
		if tc.want != 200 && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("%s: error answered as %q, want text/plain", tc.name, w.Header().Get("Content-Type"))
		}
	}
}

// TestSigningOfGet: a GET has no body and needs no body_md5; a body_md5
// given for an empty body is still checked.
func TestSigningOfGet(t *testing.T) {
	t.Parallel()
	h := newHandler(newFake(), Options{})
	if w := signed(h, "GET", "/apps/3/channels", "", nil); w.Code != 200 {
		t.Errorf("GET without body_md5: %d %s", w.Code, w.Body)
	}
	bad := map[string]string{"body_md5": "00000000000000000000000000000000"}
	if w := signed(h, "GET", "/apps/3/channels", "", bad); w.Code != 401 {
		t.Errorf("GET with a wrong body_md5: %d %s", w.Code, w.Body)
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxNameLength)
	many := make([]string, MaxChannels+1)
	for i := range many {
		many[i] = fmt.Sprintf("c%d", i)
	}
	manyJSON, _ := json.Marshal(many[:MaxChannels])
	tooManyJSON, _ := json.Marshal(many)
	big := strings.Repeat("x", DefaultMaxDataBytes)
	cases := []struct {
		name, body string
		o          Options
		want       int
		answer     string        // the JSON answer, when 200
		ev         *pusher.Event // what reached the Service
		msg        string        // in the error's text
	}{
		{"one channel", `{"name":"e","channel":"news","data":"{\"a\":1}"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: []string{"news"}, Data: `{"a":1}`}, ""},
		{"channels and socket_id", `{"name":"e","channels":["news","news-eu"],"data":"hi","socket_id":"123.456"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: []string{"news", "news-eu"}, Data: "hi", SocketID: "123.456"}, ""},
		{"100 channels", `{"name":"e","channels":` + string(manyJSON) + `,"data":"x"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: many[:MaxChannels], Data: "x"}, ""},
		{"every allowed character", `{"name":"e","channel":"aZ09_-=@,.;","data":"x"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: []string{"aZ09_-=@,.;"}, Data: "x"}, ""},
		{"names of 200", `{"name":"` + long + `","channel":"` + long + `","data":"x"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: long, Channels: []string{long}, Data: "x"}, ""},
		{"a user's channel", `{"name":"e","channels":["#server-to-user-u1"],"data":"x"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: []string{"#server-to-user-u1"}, Data: "x"}, ""},
		{"data of 10 KB", `{"name":"e","channel":"news","data":"` + big + `"}`, Options{}, 200, `{}`,
			&pusher.Event{Name: "e", Channels: []string{"news"}, Data: big}, ""},
		{"info", `{"name":"e","channels":["presence-room","presence-lobby"],"data":"x","info":"user_count,subscription_count"}`, Options{}, 200,
			`{"channels":{"presence-lobby":{"subscription_count":1,"user_count":1},"presence-room":{"subscription_count":5,"user_count":2}}}`,
			&pusher.Event{Name: "e", Channels: []string{"presence-room", "presence-lobby"}, Data: "x"}, ""},
		{"info subscription_count", `{"name":"e","channel":"news","data":"x","info":"subscription_count"}`, Options{}, 200,
			`{"channels":{"news":{"subscription_count":3}}}`, &pusher.Event{Name: "e", Channels: []string{"news"}, Data: "x"}, ""},

		{"data over 10 KB", `{"name":"e","channel":"news","data":"` + big + `x"}`, Options{}, 413, "", nil, "Payload too large"},
		{"data over a configured cap", `{"name":"e","channel":"news","data":"12345"}`, Options{MaxDataBytes: 4}, 413, "", nil, "Payload too large"},
		{"body over the cap", `{"name":"e","channel":"news","data":"12345"}`, Options{MaxBodyBytes: 16}, 413, "", nil, "too large"},
		{"101 channels", `{"name":"e","channels":` + string(tooManyJSON) + `,"data":"x"}`, Options{}, 400, "", nil, "Too many channels"},
		{"no channel", `{"name":"e","data":"x"}`, Options{}, 400, "", nil, "Missing channels"},
		{"empty channels", `{"name":"e","channels":[],"data":"x"}`, Options{}, 400, "", nil, "Missing channels"},
		{"channel and channels", `{"name":"e","channel":"a","channels":["b"],"data":"x"}`, Options{}, 400, "", nil, "not both"},
		{"channel with a space", `{"name":"e","channel":"a b","data":"x"}`, Options{}, 400, "", nil, "Invalid channel name"},
		{"channel with a slash", `{"name":"e","channel":"a/b","data":"x"}`, Options{}, 400, "", nil, "Invalid channel name"},
		{"empty channel name", `{"name":"e","channels":[""],"data":"x"}`, Options{}, 400, "", nil, "Invalid channel name"},
		{"channel of 201", `{"name":"e","channel":"` + long + `a","data":"x"}`, Options{}, 400, "", nil, "Invalid channel name"},
		{"user channel without a user", `{"name":"e","channel":"#server-to-user-","data":"x"}`, Options{}, 400, "", nil, "Invalid channel name"},
		{"no name", `{"channel":"news","data":"x"}`, Options{}, 400, "", nil, "Missing event name"},
		{"name of 201", `{"name":"` + long + `a","channel":"news","data":"x"}`, Options{}, 400, "", nil, "Event name too long"},
		{"reserved name", `{"name":"pusher_internal:member_added","channel":"news","data":"x"}`, Options{}, 400, "", nil, "reserved"},
		{"no data", `{"name":"e","channel":"news"}`, Options{}, 400, "", nil, "Missing event data"},
		{"data not a string", `{"name":"e","channel":"news","data":{"a":1}}`, Options{}, 400, "", nil, "must be a string"},
		{"bad socket_id", `{"name":"e","channel":"news","data":"x","socket_id":"abc"}`, Options{}, 400, "", nil, "Invalid socket_id"},
		{"user_count on a public channel", `{"name":"e","channel":"news","data":"x","info":"user_count"}`, Options{}, 400, "", nil, "presence"},
		{"unknown info", `{"name":"e","channel":"news","data":"x","info":"cache"}`, Options{}, 400, "", nil, "Unknown info"},
		{"not JSON", `name=e`, Options{}, 400, "", nil, "Invalid JSON"},
	}
	for _, tc := range cases {
		f := newFake()
		w := signed(newHandler(f, tc.o), "POST", "/apps/3/events", tc.body, nil)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %.200s", tc.name, w.Code, tc.want, w.Body)
			continue
		}
		if tc.want == 200 {
			if got := strings.TrimSpace(w.Body.String()); got != tc.answer {
				t.Errorf("%s: answer %s, want %s", tc.name, got, tc.answer)
			}
		} else if !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: answer %q, want it to say %q", tc.name, w.Body, tc.msg)
		}
		evs := f.events()
		switch {
		case tc.ev == nil && len(evs) != 0:
			t.Errorf("%s: refused, yet triggered %+v", tc.name, evs)
		case tc.ev != nil && (len(evs) != 1 || !reflect.DeepEqual(evs[0], *tc.ev)):
			t.Errorf("%s: triggered %.300v, want %.300v", tc.name, evs, *tc.ev)
		}
	}
}

func TestBatchEvents(t *testing.T) {
	t.Parallel()
	ev := `{"name":"e","channel":"news","data":"x"}`
	batch := func(n int, extra ...string) string {
		items := make([]string, 0, n+len(extra))
		for range n {
			items = append(items, ev)
		}
		return `{"batch":[` + strings.Join(append(items, extra...), ",") + `]}`
	}
	cases := []struct {
		name, body string
		want       int
		answer     string
		n          int // events triggered
		msg        string
	}{
		{"two", `{"batch":[{"name":"a","channel":"news","data":"1"},{"name":"b","channel":"presence-room","data":"2","socket_id":"1.2"}]}`, 200, `{}`, 2, ""},
		{"ten", batch(10), 200, `{}`, 10, ""},
		{"info", batch(1, `{"name":"b","channel":"presence-room","data":"2","info":"user_count,subscription_count"}`), 200,
			`{"batch":[{},{"subscription_count":5,"user_count":2}]}`, 2, ""},
		{"eleven", batch(11), 400, "", 0, "Batch too large"},
		{"empty", `{"batch":[]}`, 400, "", 0, "Missing batch"},
		{"no batch", `{}`, 400, "", 0, "Missing batch"},
		{"one bad: none triggered", batch(3, `{"name":"e","channel":"bad channel","data":"x"}`), 400, "", 0, "Event 3: Invalid channel name"},
		{"one too large: none triggered", batch(1, `{"name":"e","channel":"news","data":"`+strings.Repeat("x", DefaultMaxDataBytes+1)+`"}`), 413, "", 0, "Event 1: Payload too large"},
		{"not JSON", `[`, 400, "", 0, "Invalid JSON"},
	}
	for _, tc := range cases {
		f := newFake()
		w := signed(newHandler(f, Options{}), "POST", "/apps/3/batch_events", tc.body, nil)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %.200s", tc.name, w.Code, tc.want, w.Body)
			continue
		}
		if tc.want == 200 && strings.TrimSpace(w.Body.String()) != tc.answer {
			t.Errorf("%s: answer %s, want %s", tc.name, w.Body, tc.answer)
		}
		if tc.want != 200 && !strings.Contains(w.Body.String(), tc.msg) {
			t.Errorf("%s: answer %q, want it to say %q", tc.name, w.Body, tc.msg)
		}
		if got := len(f.events()); got != tc.n {
			t.Errorf("%s: %d events triggered, want %d", tc.name, got, tc.n)
		}
	}
	f := newFake()
	signed(newHandler(f, Options{}), "POST", "/apps/3/batch_events", cases[0].body, nil)
	want := []pusher.Event{
		{Name: "a", Channels: []string{"news"}, Data: "1"},
		{Name: "b", Channels: []string{"presence-room"}, Data: "2", SocketID: "1.2"},
	}
	if got := f.events(); !reflect.DeepEqual(got, want) {
		t.Errorf("batch triggered %+v, want %+v", got, want)
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, method, path string
		params             map[string]string
		body               string
		want               int
		answer             string // JSON when 200, a substring of the text otherwise
	}{
		{"all channels", "GET", "/apps/3/channels", nil, "", 200,
			`{"channels":{"news":{},"news-eu":{},"presence-lobby":{},"presence-room":{}}}`},
		{"prefix", "GET", "/apps/3/channels", map[string]string{"filter_by_prefix": "news"}, "", 200,
			`{"channels":{"news":{},"news-eu":{}}}`},
		{"prefix and subscription_count", "GET", "/apps/3/channels", map[string]string{"filter_by_prefix": "news-", "info": "subscription_count"}, "", 200,
			`{"channels":{"news-eu":{"subscription_count":1}}}`},
		{"presence and user_count", "GET", "/apps/3/channels", map[string]string{"filter_by_prefix": "presence-", "info": "user_count"}, "", 200,
			`{"channels":{"presence-lobby":{"user_count":1},"presence-room":{"user_count":2}}}`},
		{"user_count without a presence prefix", "GET", "/apps/3/channels", map[string]string{"info": "user_count"}, "", 400, "presence-"},
		{"unknown info", "GET", "/apps/3/channels", map[string]string{"info": "members"}, "", 400, "Unknown info"},

		{"channel", "GET", "/apps/3/channels/news", nil, "", 200, `{"occupied":true}`},
		{"unoccupied channel", "GET", "/apps/3/channels/empty", nil, "", 200, `{"occupied":false}`},
		{"channel with info", "GET", "/apps/3/channels/presence-room", map[string]string{"info": "user_count,subscription_count"}, "", 200,
			`{"occupied":true,"subscription_count":5,"user_count":2}`},
		{"public channel with subscription_count", "GET", "/apps/3/channels/news", map[string]string{"info": "subscription_count"}, "", 200,
			`{"occupied":true,"subscription_count":3}`},
		{"user_count of a public channel", "GET", "/apps/3/channels/news", map[string]string{"info": "user_count"}, "", 400, "presence"},
		{"invalid channel", "GET", "/apps/3/channels/a%20b", nil, "", 400, "Invalid channel name"},

		{"users", "GET", "/apps/3/channels/presence-room/users", nil, "", 200, `{"users":[{"id":"alice"},{"id":"bob"}]}`},
		{"users of an empty presence channel", "GET", "/apps/3/channels/presence-none/users", nil, "", 200, `{"users":[]}`},
		{"users of a public channel", "GET", "/apps/3/channels/news/users", nil, "", 400, "presence"},

		{"terminate", "POST", "/apps/3/users/alice/terminate_connections", nil, "{}", 200, `{}`},
		{"terminate without a body", "POST", "/apps/3/users/alice/terminate_connections", nil, "", 200, `{}`},
		{"terminate a user id of 201", "POST", "/apps/3/users/" + strings.Repeat("u", MaxNameLength+1) + "/terminate_connections", nil, "{}", 400, "Invalid user id"},
		{"channel of 201", "GET", "/apps/3/channels/" + strings.Repeat("c", MaxNameLength+1), nil, "", 400, "Invalid channel name"},
		{"users of a channel of 201", "GET", "/apps/3/channels/presence-" + strings.Repeat("c", MaxNameLength) + "/users", nil, "", 400, "Invalid channel name"},

		{"events by GET", "GET", "/apps/3/events", nil, "", 405, ""},
		{"unknown endpoint", "GET", "/apps/3/nothing", nil, "", 404, ""},
	}
	for _, tc := range cases {
		f := newFake()
		w := signed(newHandler(f, Options{}), tc.method, tc.path, tc.body, tc.params)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
			continue
		}
		got := strings.TrimSpace(w.Body.String())
		if tc.want == 200 && got != tc.answer || tc.want != 200 && !strings.Contains(got, tc.answer) {
			t.Errorf("%s: answer %s, want %s", tc.name, got, tc.answer)
		}
	}
	f := newFake()
	h := newHandler(f, Options{})
	signed(h, "POST", "/apps/3/users/alice/terminate_connections", "{}", nil)
	signed(h, "GET", "/apps/3/channels", "", map[string]string{"filter_by_prefix": "presence-"})
	if !reflect.DeepEqual(f.terminated, []string{"alice"}) || !reflect.DeepEqual(f.prefixes, []string{"presence-"}) {
		t.Errorf("the Service saw terminations %v and prefixes %v", f.terminated, f.prefixes)
	}
}

// TestServiceErrors: a Service's errors choose the status.
func TestServiceErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want int
	}{
		{fmt.Errorf("no: %w", pusher.ErrBadRequest), 400},
		{fmt.Errorf("no: %w", pusher.ErrNotFound), 404},
		{fmt.Errorf("no: %w", pusher.ErrTooLarge), 413},
		{fmt.Errorf("no: %w", pusher.ErrUnavailable), 503},
		{errors.New("boom"), 500},
	}
	for _, tc := range cases {
		f := newFake()
		f.err = tc.err
		h := newHandler(f, Options{})
		for _, w := range []*httptest.ResponseRecorder{
			signed(h, "POST", "/apps/3/events", `{"name":"e","channel":"news","data":"x"}`, nil),
			signed(h, "POST", "/apps/3/batch_events", `{"batch":[{"name":"e","channel":"news","data":"x"}]}`, nil),
			signed(h, "GET", "/apps/3/channels", "", nil),
			signed(h, "GET", "/apps/3/channels/news", "", nil),
			signed(h, "GET", "/apps/3/channels/presence-room/users", "", nil),
			signed(h, "POST", "/apps/3/users/u/terminate_connections", "{}", nil),
		} {
			if w.Code != tc.want {
				t.Errorf("%v: status %d, want %d: %s", tc.err, w.Code, tc.want, w.Body)
			}
			if tc.want == 503 && w.Header().Get("Retry-After") == "" {
				t.Errorf("%v: 503 without Retry-After", tc.err)
			}
		}
	}
}

// TestRealClock: without Options.Now the handler reads the clock.
func TestRealClock(t *testing.T) {
	t.Parallel()
	h := NewHandler(newFake(), Options{})
	now := time.Now().Unix()
	if w := do(h, "GET", "/apps/3/channels?"+signedQuery("GET", "/apps/3/channels", "", nil, now, secret), ""); w.Code != 200 {
		t.Errorf("signed now: %d %s", w.Code, w.Body)
	}
	if w := do(h, "GET", "/apps/3/channels?"+signedQuery("GET", "/apps/3/channels", "", nil, docTime, secret), ""); w.Code != 401 {
		t.Errorf("signed in 2012: %d %s", w.Code, w.Body)
	}
}

// TestEscapedPathSigned: a client that signs the path as it sends it,
// escaped, is accepted as well as one that signs it decoded.
func TestEscapedPathSigned(t *testing.T) {
	t.Parallel()
	f := newFake()
	h := newHandler(f, Options{})
	for _, signedPath := range []string{"/apps/3/users/a b/terminate_connections", "/apps/3/users/a%20b/terminate_connections"} {
		q := signedQuery("POST", signedPath, "{}", nil, docTime, secret)
		if w := do(h, "POST", "/apps/3/users/a%20b/terminate_connections?"+q, "{}"); w.Code != 200 {
			t.Errorf("signed over %q: %d %s", signedPath, w.Code, w.Body)
		}
	}
	if !reflect.DeepEqual(f.terminated, []string{"a b", "a b"}) {
		t.Errorf("terminated %q", f.terminated)
	}
}
