// Package pusherapi is the Pusher Channels HTTP API over a
// [pusher.Service]: the server libraries Pusher publishes (Node, PHP,
// Laravel's broadcaster, Ruby, Python, Go...) trigger events and query
// channels against herald unchanged (docs/pusher.md, "HTTP API").
//
// Every request is signed as Pusher signs it (auth_key, auth_timestamp,
// auth_version, body_md5, auth_signature: see [NewHandler]); errors are
// answered as Pusher answers them, with a status and a plain-text reason.
// The handler serves paths under /apps/ and is mounted on the API
// listener outside herald's own API key (api.Options.Pusher).
package pusherapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-push/herald/pusher"
)

// Limits of the API, Pusher's own.
const (
	// DefaultMaxDataBytes is the default cap on an event's data (10 KB);
	// larger data is refused with 413.
	DefaultMaxDataBytes = 10 << 10
	// MaxChannels is the most channels one event goes to.
	MaxChannels = 100
	// MaxBatch is the most events one batch_events request carries.
	MaxBatch = 10
	// MaxNameLength caps channel and event names (and user ids).
	MaxNameLength = 200
	// DefaultTimestampWindow is how far auth_timestamp may be from the
	// server's clock, either way.
	DefaultTimestampWindow = 600 * time.Second
	// MinMaxBodyBytes is the smallest default body cap (see
	// Options.MaxBodyBytes).
	MinMaxBodyBytes = 1 << 20
)

// UserChannelPrefix starts the channel Pusher's libraries trigger on to
// reach one signed-in user on all their connections (sendToUser).
const UserChannelPrefix = "#server-to-user-"

// Options configure the handler; the zero value is Pusher's defaults.
type Options struct {
	// MaxDataBytes caps an event's data (413 beyond); 0 means
	// DefaultMaxDataBytes.
	MaxDataBytes int
	// MaxBodyBytes caps a request body (413 beyond); 0 means enough for
	// a full batch of the largest events, and at least MinMaxBodyBytes.
	MaxBodyBytes int64
	// TimestampWindow is how far auth_timestamp may be from now; 0 means
	// DefaultTimestampWindow.
	TimestampWindow time.Duration
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// NewHandler serves the Pusher HTTP API for the apps svc knows:
//
//	POST /apps/{app_id}/events                           trigger an event on 1 to 100 channels
//	POST /apps/{app_id}/batch_events                     trigger up to 10 events
//	GET  /apps/{app_id}/channels                         occupied channels (filter_by_prefix, info)
//	GET  /apps/{app_id}/channels/{channel}               one channel (info)
//	GET  /apps/{app_id}/channels/{channel}/users         a presence channel's users
//	POST /apps/{app_id}/users/{user_id}/terminate_connections
//
// A request whose app is unknown is answered 404; one whose signature
// fails, 401 with the reason (the string it should have signed when the
// signature is wrong). The signature is hex(HMAC-SHA256(secret,
// "METHOD\nPATH\nQUERY")), QUERY being every query parameter but
// auth_signature, keys lowered and sorted, joined unescaped as
// k=v&k=v.
func NewHandler(svc pusher.Service, o Options) http.Handler {
	if o.MaxDataBytes <= 0 {
		o.MaxDataBytes = DefaultMaxDataBytes
	}
	if o.TimestampWindow <= 0 {
		o.TimestampWindow = DefaultTimestampWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBodyBytes <= 0 {
		// A batch of MaxBatch events, each with data of the cap (escaped
		// in JSON, up to 6 bytes a byte) and MaxChannels channels.
		perEvent := int64(6*o.MaxDataBytes + MaxChannels*(MaxNameLength+3) + 4*MaxNameLength + 256)
		o.MaxBodyBytes = max(MinMaxBodyBytes, MaxBatch*perEvent)
	}
	h := &handler{svc: svc, o: o}
	mux := http.NewServeMux()
	mux.Handle("POST /apps/{app_id}/events", h.signed(h.events))
	mux.Handle("POST /apps/{app_id}/batch_events", h.signed(h.batchEvents))
	mux.Handle("GET /apps/{app_id}/channels", h.signed(h.channels))
	mux.Handle("GET /apps/{app_id}/channels/{channel}", h.signed(h.channel))
	mux.Handle("GET /apps/{app_id}/channels/{channel}/users", h.signed(h.users))
	mux.Handle("POST /apps/{app_id}/users/{user_id}/terminate_connections", h.signed(h.terminate))
	return mux
}

type handler struct {
	svc pusher.Service
	o   Options
}

// request is a signed request as a handler sees it.
type request struct {
	r      *http.Request
	app    pusher.App
	params params
	body   []byte
}

// signed finds the app, reads the body within its cap and checks the
// signature before next runs.
func (h *handler) signed(next func(http.ResponseWriter, *request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app, ok := h.svc.App(r.PathValue("app_id"))
		if !ok {
			writeText(w, http.StatusNotFound, "Unknown app")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request body too large: over %d bytes", h.o.MaxBodyBytes))
				return
			}
			writeText(w, http.StatusBadRequest, "Reading the body: "+err.Error())
			return
		}
		p, err := parseParams(r.URL.RawQuery)
		if err != nil {
			writeText(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := verify(r, p, body, app, h.o.Now(), h.o.TimestampWindow); err != nil {
			writeText(w, http.StatusUnauthorized, err.Error())
			return
		}
		next(w, &request{r: r, app: app, params: p, body: body})
	})
}

// eventIn is one event as a client posts it.
type eventIn struct {
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Channel  string          `json:"channel"`
	Channels []string        `json:"channels"`
	SocketID string          `json:"socket_id"`
	Info     string          `json:"info"`
}

// checked is an event ready to trigger, with the info it asks back.
type checked struct {
	ev   pusher.Event
	info infoAttrs
}

// check validates e: 400 for a malformed event, 413 for data over the
// cap.
func (h *handler) check(e eventIn) (checked, int, string) {
	if e.Name == "" {
		return checked{}, http.StatusBadRequest, "Missing event name"
	}
	if len(e.Name) > MaxNameLength || !utf8.ValidString(e.Name) {
		return checked{}, http.StatusBadRequest, fmt.Sprintf("Event name too long or not UTF-8: at most %d bytes", MaxNameLength)
	}
	if strings.HasPrefix(e.Name, "pusher:") || strings.HasPrefix(e.Name, "pusher_internal:") {
		return checked{}, http.StatusBadRequest, "Event names starting with pusher: are reserved"
	}
	if len(e.Data) == 0 {
		return checked{}, http.StatusBadRequest, "Missing event data"
	}
	var data string
	if err := json.Unmarshal(e.Data, &data); err != nil {
		return checked{}, http.StatusBadRequest, "Event data must be a string (JSON-encode objects first)"
	}
	if len(data) > h.o.MaxDataBytes {
		return checked{}, http.StatusRequestEntityTooLarge, fmt.Sprintf("Payload too large: event data of %d bytes is over the %d-byte limit", len(data), h.o.MaxDataBytes)
	}
	chans := e.Channels
	switch {
	case e.Channel != "" && len(e.Channels) > 0:
		return checked{}, http.StatusBadRequest, "Give channel or channels, not both"
	case e.Channel != "":
		chans = []string{e.Channel}
	}
	if len(chans) == 0 {
		return checked{}, http.StatusBadRequest, "Missing channels: give channel or channels (1 to 100)"
	}
	if len(chans) > MaxChannels {
		return checked{}, http.StatusBadRequest, fmt.Sprintf("Too many channels: %d, at most %d per event", len(chans), MaxChannels)
	}
	for _, c := range chans {
		if !validChannel(c) && !validUserChannel(c) {
			return checked{}, http.StatusBadRequest, invalidChannel(c)
		}
	}
	if e.SocketID != "" && !socketID.MatchString(e.SocketID) {
		return checked{}, http.StatusBadRequest, fmt.Sprintf("Invalid socket_id %q: want digits.digits", e.SocketID)
	}
	info, msg := parseInfo(e.Info)
	if msg != "" {
		return checked{}, http.StatusBadRequest, msg
	}
	if info.users {
		for _, c := range chans {
			if !isPresence(c) {
				return checked{}, http.StatusBadRequest, "user_count may only be requested for presence channels, not " + c
			}
		}
	}
	return checked{ev: pusher.Event{Name: e.Name, Channels: chans, Data: data, SocketID: e.SocketID}, info: info}, 0, ""
}

// events triggers one event: {} 200, or {"channels":{name:{attrs}}} when
// info is asked.
func (h *handler) events(w http.ResponseWriter, q *request) {
	var e eventIn
	if err := json.Unmarshal(q.body, &e); err != nil {
		writeText(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	c, status, msg := h.check(e)
	if status != 0 {
		writeText(w, status, msg)
		return
	}
	if err := h.svc.Trigger(q.app.ID, c.ev); err != nil {
		writeServiceError(w, err)
		return
	}
	if !c.info.any() {
		writeJSON(w, struct{}{})
		return
	}
	out := make(map[string]map[string]int, len(c.ev.Channels))
	for _, name := range c.ev.Channels {
		ci, err := h.svc.Channel(q.app.ID, name)
		if err != nil {
			writeServiceError(w, err)
			return
		}
		out[name] = c.info.attrs(ci)
	}
	writeJSON(w, map[string]any{"channels": out})
}

// batchEvents triggers up to MaxBatch events, all checked before any is
// triggered: {} 200, or {"batch":[{attrs},...]} (one per event, in
// order) when any asks for info.
func (h *handler) batchEvents(w http.ResponseWriter, q *request) {
	var req struct {
		Batch []eventIn `json:"batch"`
	}
	if err := json.Unmarshal(q.body, &req); err != nil {
		writeText(w, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	if len(req.Batch) == 0 {
		writeText(w, http.StatusBadRequest, `Missing batch: want {"batch":[...]} with 1 to 10 events`)
		return
	}
	if len(req.Batch) > MaxBatch {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("Batch too large: %d events, at most %d", len(req.Batch), MaxBatch))
		return
	}
	evs := make([]checked, len(req.Batch))
	anyInfo := false
	for i, e := range req.Batch {
		c, status, msg := h.check(e)
		if status != 0 {
			writeText(w, status, fmt.Sprintf("Event %d: %s", i, msg))
			return
		}
		evs[i] = c
		anyInfo = anyInfo || c.info.any()
	}
	for i, c := range evs {
		if err := h.svc.Trigger(q.app.ID, c.ev); err != nil {
			writeServiceError(w, fmt.Errorf("event %d (after %d triggered): %w", i, i, err))
			return
		}
	}
	if !anyInfo {
		writeJSON(w, struct{}{})
		return
	}
	out := make([]map[string]int, len(evs))
	for i, c := range evs {
		out[i] = map[string]int{}
		if !c.info.any() {
			continue
		}
		ci, err := h.svc.Channel(q.app.ID, c.ev.Channels[0])
		if err != nil {
			writeServiceError(w, err)
			return
		}
		out[i] = c.info.attrs(ci)
	}
	writeJSON(w, map[string]any{"batch": out})
}

// channels lists the occupied channels: {"channels":{name:{attrs}}}.
// user_count is for presence channels only, so it needs a
// filter_by_prefix starting with presence-.
func (h *handler) channels(w http.ResponseWriter, q *request) {
	prefix := q.params["filter_by_prefix"]
	info, msg := parseInfo(q.params["info"])
	if msg != "" {
		writeText(w, http.StatusBadRequest, msg)
		return
	}
	if info.users && !isPresence(prefix) {
		writeText(w, http.StatusBadRequest, "user_count may only be requested with a filter_by_prefix starting with presence-")
		return
	}
	list, err := h.svc.Channels(q.app.ID, prefix)
	if err != nil {
		writeServiceError(w, err)
		return
	}
	out := make(map[string]map[string]int, len(list))
	for name, ci := range list {
		out[name] = info.attrs(ci)
	}
	writeJSON(w, map[string]any{"channels": out})
}

// channel describes one channel: {"occupied":bool, attrs...}.
func (h *handler) channel(w http.ResponseWriter, q *request) {
	name := q.r.PathValue("channel")
	if !validChannel(name) {
		writeText(w, http.StatusBadRequest, invalidChannel(name))
		return
	}
	info, msg := parseInfo(q.params["info"])
	if msg != "" {
		writeText(w, http.StatusBadRequest, msg)
		return
	}
	if info.users && !isPresence(name) {
		writeText(w, http.StatusBadRequest, "user_count may only be requested for presence channels")
		return
	}
	ci, err := h.svc.Channel(q.app.ID, name)
	if err != nil {
		writeServiceError(w, err)
		return
	}
	out := map[string]any{"occupied": ci.Occupied}
	for k, v := range info.attrs(ci) {
		out[k] = v
	}
	writeJSON(w, out)
}

// users lists a presence channel's users: {"users":[{"id":..},...]}.
func (h *handler) users(w http.ResponseWriter, q *request) {
	name := q.r.PathValue("channel")
	if !validChannel(name) {
		writeText(w, http.StatusBadRequest, invalidChannel(name))
		return
	}
	if !isPresence(name) {
		writeText(w, http.StatusBadRequest, "Users may only be listed for presence channels")
		return
	}
	ids, err := h.svc.Users(q.app.ID, name)
	if err != nil {
		writeServiceError(w, err)
		return
	}
	type user struct {
		ID string `json:"id"`
	}
	out := make([]user, len(ids))
	for i, id := range ids {
		out[i] = user{id}
	}
	writeJSON(w, map[string]any{"users": out})
}

// terminate closes every connection of a user: {} 200.
func (h *handler) terminate(w http.ResponseWriter, q *request) {
	user := q.r.PathValue("user_id")
	if user == "" || len(user) > MaxNameLength || !utf8.ValidString(user) {
		writeText(w, http.StatusBadRequest, fmt.Sprintf("Invalid user id: 1 to %d bytes of UTF-8", MaxNameLength))
		return
	}
	if err := h.svc.TerminateUser(q.app.ID, user); err != nil {
		writeServiceError(w, err)
		return
	}
	writeJSON(w, struct{}{})
}

// infoAttrs are the attributes an info= parameter asks for.
type infoAttrs struct{ users, subs bool }

func (a infoAttrs) any() bool { return a.users || a.subs }

// attrs is ci reduced to the asked attributes.
func (a infoAttrs) attrs(ci pusher.ChannelInfo) map[string]int {
	m := map[string]int{}
	if a.users {
		m["user_count"] = ci.UserCount
	}
	if a.subs {
		m["subscription_count"] = ci.SubscriptionCount
	}
	return m
}

// parseInfo reads a comma-separated info list; an unknown attribute is a
// message for 400.
func parseInfo(s string) (infoAttrs, string) {
	var a infoAttrs
	if s == "" {
		return a, ""
	}
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "user_count":
			a.users = true
		case "subscription_count":
			a.subs = true
		case "":
		default:
			return a, fmt.Sprintf("Unknown info attribute %q: want user_count or subscription_count", f)
		}
	}
	return a, ""
}

var (
	channelName = regexp.MustCompile(`^[A-Za-z0-9_\-=@,.;]+$`)
	socketID    = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

// validChannel reports whether name is a Pusher channel name: 1 to
// MaxNameLength of letters, digits and _ - = @ , . ;
func validChannel(name string) bool {
	return len(name) <= MaxNameLength && channelName.MatchString(name)
}

// validUserChannel reports whether name is #server-to-user-{user id}.
func validUserChannel(name string) bool {
	id, ok := strings.CutPrefix(name, UserChannelPrefix)
	return ok && id != "" && len(name) <= MaxNameLength && utf8.ValidString(id)
}

func invalidChannel(name string) string {
	if len(name) > 40 {
		name = name[:40] + "..."
	}
	return fmt.Sprintf("Invalid channel name %q: 1 to %d of A-Z a-z 0-9 _ - = @ , . ;", name, MaxNameLength)
}

func isPresence(name string) bool { return strings.HasPrefix(name, "presence-") }

// writeServiceError maps a Service error to Pusher's statuses.
func writeServiceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, pusher.ErrBadRequest):
		writeText(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, pusher.ErrNotFound):
		writeText(w, http.StatusNotFound, err.Error())
	case errors.Is(err, pusher.ErrTooLarge):
		writeText(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, pusher.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeText(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeText(w, http.StatusInternalServerError, "Internal error: "+err.Error())
	}
}

// writeText answers with a plain-text reason, as Pusher does.
func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
