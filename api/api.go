// Package api is herald's HTTP listener for backends and operators: the
// publish/broadcast/disconnect API, channel listing and stats, Prometheus
// metrics, health and readiness probes, pprof, and the demo page with the
// browser client (docs/api.md).
//
// Handlers run on net/http's goroutines; they reach connections only
// through the Backend, which hands work to the event loops.
//
// The handler refuses state-changing requests from other sites' pages
// (403 cross_site, see [http.CrossOriginProtection]), requires the API key
// on /api/ and /debug/pprof/ when one is set (the Pusher HTTP API at
// /apps/ checks its own signatures instead), never serves
// /debug/pprof/cmdline (it would show secrets given as flags), and answers
// every 503 and 429 with Retry-After. [NewServer] bounds the time and
// memory one client may hold.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Bounds of the server [NewServer] builds: a client that sends its
// headers or body slowly, or reads the answer slowly, is cut off.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 16 << 10
)

// DefaultMaxConns is the default cap on the API listener's open
// connections (see golang.org/x/net/netutil.LimitListener).
const DefaultMaxConns = 1024

// DefaultMaxBodyBytes is the default of Options.MaxBodyBytes.
const DefaultMaxBodyBytes = 1 << 20

// RetryAfter is the Retry-After value, in seconds, sent with every 503
// and 429 answer.
const RetryAfter = "1"

// NewServer returns an http.Server for h with the package's timeouts and
// header cap. Wrap its listener in a connection cap (DefaultMaxConns).
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
}

// Stats counts the requests the API refused. Its fields are safe for
// concurrent use.
type Stats struct {
	// CrossSite counts state-changing requests refused because a page of
	// another site sent them (403 cross_site).
	CrossSite atomic.Uint64
	// Unauthorized counts requests refused for a missing or wrong API key
	// (401 unauthorized).
	Unauthorized atomic.Uint64
	// ForeignHost counts requests refused because their Host was not a
	// loopback name on an API without a key (403 host_not_allowed).
	ForeignHost atomic.Uint64
}

// Refusals is a snapshot of Stats.
type Refusals struct {
	CrossSite    uint64 `json:"cross_site"`
	Unauthorized uint64 `json:"unauthorized"`
	ForeignHost  uint64 `json:"foreign_host"`
}

// Snapshot reads the counters. Safe from any goroutine.
func (s *Stats) Snapshot() Refusals {
	return Refusals{CrossSite: s.CrossSite.Load(), Unauthorized: s.Unauthorized.Load(), ForeignHost: s.ForeignHost.Load()}
}

// Published is the result of one publish.
type Published struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
	// Duplicate is set when the publish carried an idempotency key seen
	// within the window: nothing was stored or delivered, and Offset and
	// Epoch are the first publish's.
	Duplicate bool `json:"duplicate,omitempty"`
}

// Backend is what the API needs from the running node. Its methods are
// called from many goroutines at once.
type Backend interface {
	// Ready reports whether the node accepts new connections (false while
	// draining or while a required broker is unreachable) and why not.
	Ready() (bool, string)
	// Publish sends data to every subscriber of channel. Errors wrapping
	// ErrBadRequest are the caller's fault (400), ErrTooLarge means 413,
	// ErrUnavailable 503.
	Publish(channel string, data []byte) (Published, error)
	// DisconnectUser closes every connection of user and says how many.
	DisconnectUser(user, reason string) (int, error)
	// Channels lists one page of the node's channels, sorted by name:
	// the channels (JSON-encodable) and the cursor of the next page ("" if
	// this is the last).
	Channels(q ChannelQuery) (channels any, next string)
	// Stats returns the node's counters (JSON-encodable).
	Stats() any
}

// PresenceBackend is the part of a Backend that serves GET
// /api/presence. A Backend without it answers with 501 not_implemented.
type PresenceBackend interface {
	// Presence returns the members of a presence channel: their exact
	// count and at most limit user ids. Errors wrapping ErrBadRequest (a
	// channel without presence) are 400, ErrUnknownNamespace 400.
	Presence(channel string, limit int) (Presence, error)
}

// Presence is a presence channel's members (GET /api/presence).
type Presence struct {
	Channel string   `json:"channel"`
	Count   int      `json:"count"`
	Users   []string `json:"users"`
}

// Bounds of GET /api/presence's list.
const (
	DefaultPresenceList = 100
	MaxPresenceList     = 1000
)

// HistoryBackend is the part of a Backend that serves the history API
// (GET and DELETE /api/history) and idempotent publishes
// (idempotency_key). A Backend without it answers those with 501
// not_implemented. Errors are mapped like Publish's.
type HistoryBackend interface {
	// History returns one page of a channel's retained messages.
	History(q HistoryQuery) (HistoryPage, error)
	// RemoveHistory drops a channel's history (its subscribers stay) and
	// starts a new epoch.
	RemoveHistory(channel string) (RemovedHistory, error)
	// PublishOnce is Publish with an idempotency key (1 to
	// MaxIdempotencyKey bytes): a key seen for the channel within the
	// window returns the first publish's result with Duplicate set, and
	// stores and delivers nothing.
	PublishOnce(channel string, data []byte, key string) (Published, error)
}

// HistoryQuery selects a page of GET /api/history.
type HistoryQuery struct {
	Channel string
	// Since, when set, asks for the messages after that offset; nil: from
	// the oldest kept.
	Since *uint64
	// Epoch, when set, is the epoch Since belongs to: another epoch means
	// recovered=false.
	Epoch string
	// Limit is the page size, 1 to MaxHistoryPage.
	Limit int
}

// HistoryMessage is one retained message.
type HistoryMessage struct {
	Offset uint64
	Data   []byte
	Time   time.Time
}

// HistoryPage is one page of history, oldest first.
type HistoryPage struct {
	// Epoch is the channel's epoch ("" for a channel with no history and
	// no subscribers).
	Epoch    string
	Messages []HistoryMessage
	// More reports messages after the page: the next page starts after
	// the last message's offset.
	More bool
	// Recovered reports that the page continues exactly from Since in
	// Epoch (the rule of a client's since); otherwise it starts at the
	// oldest message kept.
	Recovered bool
}

// RemovedHistory is the result of DELETE /api/history.
type RemovedHistory struct {
	Channel string `json:"channel"`
	Removed int    `json:"removed"`
	Epoch   string `json:"epoch"`
}

// DefaultHistoryPage and MaxHistoryPage bound a page of GET /api/history
// (?limit=).
const (
	DefaultHistoryPage = 100
	MaxHistoryPage     = 1000
)

// MaxIdempotencyKey is the longest idempotency_key, in bytes.
const MaxIdempotencyKey = 128

// ChannelQuery selects a page of GET /api/channels.
type ChannelQuery struct {
	// Prefix keeps the channels whose names start with it.
	Prefix string
	// After is the cursor: the channels whose names sort after it.
	After string
	// Limit is the page size, 1 to MaxChannelPage.
	Limit int
	// Users includes the personal user: channels (who is online).
	Users bool
}

// DefaultChannelPage and MaxChannelPage bound a page of GET
// /api/channels (?limit=): a listing costs memory and CPU for one page,
// never for every channel of the node.
const (
	DefaultChannelPage = 1000
	MaxChannelPage     = 10000
)

// Errors a Backend wraps to choose the HTTP status.
var (
	// ErrBadRequest: the request is wrong (400 bad_request).
	ErrBadRequest = errors.New("bad request")
	// ErrTooLarge: the payload could never be delivered (413 too_large).
	ErrTooLarge = errors.New("too large")
	// ErrUnavailable: the node cannot take it now; try again
	// (503 unavailable, with Retry-After).
	ErrUnavailable = errors.New("unavailable")
	// ErrNotImplemented: the node cannot do this at all
	// (501 not_implemented).
	ErrNotImplemented = errors.New("not implemented")
	// ErrUnknownNamespace: the channel's prefix names no configured
	// namespace (400 unknown_namespace; docs/namespaces.md).
	ErrUnknownNamespace = errors.New("unknown namespace")
)

// Refused returns err as a Backend error of kind (one of the errors
// above): the API answers it with kind's status and code and with err's
// message alone, for an err that says what was refused already (where
// "kind: err" would say it twice). errors.Is holds for kind and for what
// err wraps.
func Refused(kind, err error) error { return &refused{kind: kind, err: err} }

// refused is Refused's error.
type refused struct{ kind, err error }

func (r *refused) Error() string   { return r.err.Error() }
func (r *refused) Unwrap() []error { return []error{r.kind, r.err} }

// Options configure the API listener's handlers.
type Options struct {
	// APIKey, when set, is required on /api/ and /debug/pprof/ as
	// "Authorization: Bearer KEY" or "X-API-Key: KEY".
	APIKey string
	// MaxBodyBytes caps request bodies (413 beyond); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// EnablePprof mounts /debug/pprof/, behind APIKey, without cmdline.
	EnablePprof bool
	// Stats receives the refusal counters (nil: not counted).
	Stats *Stats
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// Demo serves the demo page at / and the browser client at /herald.js
	// when set.
	Demo http.Handler
	// Client serves /herald.js when set (also without the demo page).
	Client http.Handler
	// Pusher serves the Pusher HTTP API at /apps/ when set (see package
	// pusherapi). It is outside APIKey: Pusher's requests carry their own
	// signature. The cross-site and loopback-Host checks stay in front.
	Pusher http.Handler
	// LoopbackHostsOnly serves only requests whose Host is localhost or a
	// loopback address (403 host_not_allowed otherwise): set it for an
	// API on loopback without a key, which DNS rebinding would otherwise
	// open to any web page.
	LoopbackHostsOnly bool
}

// NewHandler builds the API's router, behind the cross-site check.
func NewHandler(b Backend, o Options) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Stats == nil {
		o.Stats = new(Stats)
	}
	h := &handlers{b: b, o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := b.Ready(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": why})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("POST /api/publish", h.auth(h.publish))
	mux.Handle("POST /api/broadcast", h.auth(h.broadcast))
	mux.Handle("POST /api/disconnect", h.auth(h.disconnect))
	mux.Handle("GET /api/channels", h.auth(h.channels))
	mux.Handle("GET /api/history", h.auth(h.history))
	mux.Handle("DELETE /api/history", h.auth(h.removeHistory))
	mux.Handle("GET /api/presence", h.auth(h.presence))
	mux.Handle("GET /api/stats", h.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, b.Stats())
	}))
	mux.Handle("/api/", h.auth(func(w http.ResponseWriter, r *http.Request) {
		if m, ok := endpoints[r.URL.Path]; ok {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.URL.Path+" takes "+m)
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no API endpoint "+r.Method+" "+r.URL.Path)
	}))
	if o.Metrics != nil {
		mux.Handle("GET /metrics", o.Metrics)
	}
	if o.EnablePprof {
		h.mountPprof(mux)
	}
	if o.Client != nil {
		mux.Handle("GET /herald.js", o.Client)
	}
	if o.Demo != nil {
		mux.Handle("GET /{$}", o.Demo)
	}
	if o.Pusher != nil {
		mux.Handle("/apps/", o.Pusher)
	}
	if o.LoopbackHostsOnly {
		return h.onlyLoopbackHosts(h.crossOrigin(mux))
	}
	return h.crossOrigin(mux)
}

// mountPprof serves the Go profiles behind the API key. cmdline is never
// served: it would show every secret given as a flag.
func (h *handlers) mountPprof(mux *http.ServeMux) {
	mux.Handle("/debug/pprof/", h.auth(pprof.Index))
	mux.Handle("/debug/pprof/profile", h.auth(pastWriteTimeout(pprof.Profile, 30)))
	mux.Handle("/debug/pprof/symbol", h.auth(pprof.Symbol))
	mux.Handle("/debug/pprof/trace", h.auth(pastWriteTimeout(pprof.Trace, 1)))
	mux.HandleFunc("/debug/pprof/cmdline", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "the command line is not served")
	})
}

// noWriteTimeout is the server a profile handler sees: pprof refuses a
// ?seconds= at or over its server's WriteTimeout.
var noWriteTimeout = &http.Server{}

// pastWriteTimeout lets a profile or trace of ?seconds= (defaultSeconds
// when absent) run longer than WriteTimeout: its connection's write
// deadline moves past the requested duration.
func pastWriteTimeout(next http.HandlerFunc, defaultSeconds int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sec, err := strconv.ParseInt(r.URL.Query().Get("seconds"), 10, 64)
		if err != nil || sec <= 0 {
			sec = defaultSeconds
		}
		deadline := time.Now().Add(time.Duration(min(sec, 1<<20))*time.Second + WriteTimeout)
		_ = http.NewResponseController(w).SetWriteDeadline(deadline) // unsupported by test recorders
		next(w, r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, noWriteTimeout)))
	}
}

// crossOrigin refuses unsafe requests (POST) sent by a page of another
// site, and counts them. Safe methods and requests that carry neither
// Sec-Fetch-Site nor Origin (backends, curl) pass.
func (h *handlers) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h.o.Stats.CrossSite.Add(1)
		writeError(w, http.StatusForbidden, "cross_site", "cross-site browser requests may not change state; call the API from a backend")
	}))
	return cop.Handler(next)
}

// channels answers GET /api/channels?prefix=&after=&limit=&users=1 with
// one page: {"channels":[...],"next":"cursor"} ("next" absent on the last
// page).
func (h *handlers) channels(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	cq := ChannelQuery{Prefix: q.Get("prefix"), After: q.Get("after"), Limit: DefaultChannelPage}
	switch q.Get("users") {
	case "1", "true":
		cq.Users = true
	}
	var ok bool
	if cq.Limit, ok = limitParam(w, q, cq.Limit, MaxChannelPage); !ok {
		return
	}
	list, next := h.b.Channels(cq)
	out := map[string]any{"channels": list}
	if next != "" {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

// IsLoopbackHost reports whether host (a Host header, or the host of a
// listen address, with or without a port) names this machine: localhost,
// a name under .localhost, or a loopback address.
func IsLoopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// onlyLoopbackHosts refuses requests whose Host is not a loopback name.
// An API on loopback without a key trusts whoever reaches it, and a web
// page can reach it by pointing a name of its own at 127.0.0.1 (DNS
// rebinding): such a page's requests carry that name in Host, so they are
// refused (403 host_not_allowed) and counted.
func (h *handlers) onlyLoopbackHosts(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			h.o.Stats.ForeignHost.Add(1)
			writeError(w, http.StatusForbidden, "host_not_allowed", "this API listens on loopback without a key and serves only localhost and loopback addresses in Host; set an API key to serve other names")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// endpoints maps each API path to its method, for 405 answers.
var endpoints = map[string]string{
	"/api/publish": "POST", "/api/broadcast": "POST", "/api/disconnect": "POST",
	"/api/channels": "GET", "/api/stats": "GET", "/api/history": "GET, DELETE",
}

type handlers struct {
	b Backend
	o Options
}

// auth requires the API key when one is configured.
func (h *handlers) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.o.APIKey != "" {
			key := r.Header.Get("X-API-Key")
			if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				key = strings.TrimSpace(v)
			}
			if subtle.ConstantTimeCompare([]byte(key), []byte(h.o.APIKey)) != 1 {
				h.o.Stats.Unauthorized.Add(1)
				w.Header().Set("WWW-Authenticate", `Bearer realm="herald"`)
				writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong API key")
				return
			}
		}
		next(w, r)
	})
}

// readBody reads the whole body within the size limit.
func (h *handlers) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("body larger than %d bytes", h.o.MaxBodyBytes))
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "bad_request", "reading body: "+err.Error())
		return nil, false
	}
	return body, true
}

// publish: raw body with ?channel=, or JSON {"channel":..,"data":..};
// idempotency_key in the query or the JSON body.
func (h *handlers) publish(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	ch := r.URL.Query().Get("channel")
	key := r.URL.Query().Get("idempotency_key")
	data := body
	if ch == "" {
		var req struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
			Key     string          `json:"idempotency_key"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", `give ?channel= with a raw body, or a JSON body {"channel":..,"data":..}: `+err.Error())
			return
		}
		if req.Channel == "" || len(req.Data) == 0 {
			writeError(w, http.StatusBadRequest, "bad_request", `JSON body needs "channel" and "data"`)
			return
		}
		ch, data = req.Channel, req.Data
		if req.Key != "" {
			key = req.Key
		}
	}
	if !checkKey(w, key) {
		return
	}
	p, err := h.publishOne(ch, data, key)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// checkKey refuses an idempotency key over MaxIdempotencyKey bytes.
func checkKey(w http.ResponseWriter, key string) bool {
	if len(key) > MaxIdempotencyKey {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("idempotency_key: at most %d bytes, got %d", MaxIdempotencyKey, len(key)))
		return false
	}
	return true
}

// publishOne publishes through the Backend, idempotently when key is set.
func (h *handlers) publishOne(channel string, data []byte, key string) (Published, error) {
	if key == "" {
		return h.b.Publish(channel, data)
	}
	hb, ok := h.b.(HistoryBackend)
	if !ok {
		return Published{}, fmt.Errorf("%w: this node has no idempotent publish", ErrNotImplemented)
	}
	return hb.PublishOnce(channel, data, key)
}

func (h *handlers) broadcast(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
		Key      string          `json:"idempotency_key"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", `body must be {"channels":[..],"data":..}: `+err.Error())
		return
	}
	if len(req.Channels) == 0 || len(req.Data) == 0 {
		writeError(w, http.StatusBadRequest, "bad_request", `"channels" (non-empty) and "data" are required`)
		return
	}
	if len(req.Channels) > 1000 {
		writeError(w, http.StatusBadRequest, "bad_request", "at most 1000 channels per broadcast")
		return
	}
	key := req.Key
	if key == "" {
		key = r.URL.Query().Get("idempotency_key")
	}
	if !checkKey(w, key) {
		return
	}
	out := make([]Published, 0, len(req.Channels))
	for _, ch := range req.Channels {
		p, err := h.publishOne(ch, req.Data, key)
		if err != nil {
			if q := strconv.Quote(ch); !strings.Contains(err.Error(), q) {
				err = fmt.Errorf("channel %s: %w", q, err) // name it, once
			}
			writeBackendError(w, fmt.Errorf("%w (after %d published)", err, len(out)))
			return
		}
		out = append(out, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"published": out})
}

// history answers GET /api/history?channel=&since=&epoch=&limit= with
// one page: {"channel":..,"epoch":..,"messages":[{"offset":..,"data":..,
// "time":..}],"next":OFFSET,"recovered":bool} ("next" absent when no
// message is left after the page).
func (h *handlers) history(w http.ResponseWriter, r *http.Request) {
	hb, ok := h.b.(HistoryBackend)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node serves no history API")
		return
	}
	q := r.URL.Query()
	hq := HistoryQuery{Channel: q.Get("channel"), Epoch: q.Get("epoch"), Limit: DefaultHistoryPage}
	if hq.Channel == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "?channel= is required")
		return
	}
	if s := q.Get("since"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("since: want an offset, got %q", s))
			return
		}
		hq.Since = &n
	}
	if hq.Limit, ok = limitParam(w, q, hq.Limit, MaxHistoryPage); !ok {
		return
	}
	page, err := hb.History(hq)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	type message struct {
		Offset uint64 `json:"offset"`
		Data   any    `json:"data"`
		Time   string `json:"time"`
	}
	msgs := make([]message, len(page.Messages))
	for i, m := range page.Messages {
		msgs[i] = message{Offset: m.Offset, Data: dataValue(m.Data), Time: m.Time.UTC().Format(time.RFC3339Nano)}
	}
	out := map[string]any{"channel": hq.Channel, "epoch": page.Epoch, "messages": msgs, "recovered": page.Recovered}
	if page.More && len(msgs) > 0 {
		out["next"] = msgs[len(msgs)-1].Offset
	}
	writeJSON(w, http.StatusOK, out)
}

// presence answers GET /api/presence?channel=&limit= with
// {"channel":..,"count":N,"users":[...]}: the exact count, at most limit
// users (default DefaultPresenceList).
func (h *handlers) presence(w http.ResponseWriter, r *http.Request) {
	pb, ok := h.b.(PresenceBackend)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node serves no presence API")
		return
	}
	q := r.URL.Query()
	ch := q.Get("channel")
	if ch == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "?channel= is required")
		return
	}
	limit := DefaultPresenceList
	if limit, ok = limitParam(w, q, limit, MaxPresenceList); !ok {
		return
	}
	p, err := pb.Presence(ch, limit)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	p.Channel = ch
	if p.Users == nil {
		p.Users = []string{}
	}
	writeJSON(w, http.StatusOK, p)
}

// limitParam reads ?limit= of q into a page size from 1 to max (def when
// absent); a bad one is answered 400 and ok is false.
func limitParam(w http.ResponseWriter, q url.Values, def, max int) (n int, ok bool) {
	s := q.Get("limit")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("limit: want 1 to %d, got %q", max, s))
		return 0, false
	}
	return n, true
}

// dataValue is a payload as the envelope carries it: inlined when it is
// JSON, else a JSON string.
func dataValue(data []byte) any {
	if json.Valid(data) {
		return json.RawMessage(data)
	}
	return string(data)
}

// removeHistory answers DELETE /api/history?channel= with
// {"channel":..,"removed":N,"epoch":NEW}.
func (h *handlers) removeHistory(w http.ResponseWriter, r *http.Request) {
	hb, ok := h.b.(HistoryBackend)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not_implemented", "this node serves no history API")
		return
	}
	ch := r.URL.Query().Get("channel")
	if ch == "" {
		writeError(w, http.StatusBadRequest, "bad_request", "?channel= is required")
		return
	}
	out, err := hb.RemoveHistory(ch)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	out.Channel = ch
	writeJSON(w, http.StatusOK, out)
}

func (h *handlers) disconnect(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		User   string `json:"user"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.User == "" {
		writeError(w, http.StatusBadRequest, "bad_request", `body must be {"user":"..."}`)
		return
	}
	n, err := h.b.DisconnectUser(req.User, req.Reason)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": req.User, "disconnected": n})
}

// writeBackendError maps a Backend error to its status.
func writeBackendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrUnknownNamespace):
		writeError(w, http.StatusBadRequest, "unknown_namespace", err.Error())
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	case errors.Is(err, ErrNotImplemented):
		writeError(w, http.StatusNotImplemented, "not_implemented", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// writeError writes {"error":{"code":..,"message":..}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// writeJSON writes v with status; a 503 or 429 carries Retry-After.
func writeJSON(w http.ResponseWriter, status int, v any) {
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", RetryAfter)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
