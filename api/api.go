// Package api is herald's HTTP listener for backends and operators: the
// publish/broadcast/disconnect API, channel listing and stats, Prometheus
// metrics, health and readiness probes, pprof, and the demo page with the
// browser client (docs/api.md).
//
// Handlers run on net/http's goroutines; they reach connections only
// through the Backend, which hands work to the event loops.
package api

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"strings"
)

// Published is the result of one publish.
type Published struct {
	Channel string `json:"channel"`
	Offset  uint64 `json:"offset"`
	Epoch   string `json:"epoch"`
}

// Backend is what the API needs from the running node. Its methods are
// called from many goroutines at once.
type Backend interface {
	// Ready reports whether the node accepts new connections (false while
	// draining or while a required broker is unreachable) and why not.
	Ready() (bool, string)
	// Publish sends data to every subscriber of channel. Errors wrapping
	// ErrBadRequest are the caller's fault (400); ErrUnavailable means 503.
	Publish(channel string, data []byte) (Published, error)
	// DisconnectUser closes every connection of user and says how many.
	DisconnectUser(user, reason string) (int, error)
	// Channels lists the node's channels (JSON-encodable).
	Channels() any
	// Stats returns the node's counters (JSON-encodable).
	Stats() any
}

// Errors a Backend wraps to choose the HTTP status.
var (
	ErrBadRequest  = errors.New("bad request")
	ErrUnavailable = errors.New("unavailable")
)

// Options configure the API listener's handlers.
type Options struct {
	// APIKey, when set, is required on /api/ as "Authorization: Bearer KEY"
	// or "X-API-Key: KEY".
	APIKey string
	// MaxBodyBytes caps request bodies (default 1 MiB; 413 beyond).
	MaxBodyBytes int64
	// EnablePprof mounts /debug/pprof/.
	EnablePprof bool
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// Demo serves the demo page at / and the browser client at /herald.js
	// when set.
	Demo http.Handler
	// Client serves /herald.js when set (also without the demo page).
	Client http.Handler
}

// NewHandler builds the API's router.
func NewHandler(b Backend, o Options) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 1 << 20
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
	mux.Handle("GET /api/channels", h.auth(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"channels": b.Channels()})
	}))
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
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	if o.Client != nil {
		mux.Handle("GET /herald.js", o.Client)
	}
	if o.Demo != nil {
		mux.Handle("GET /{$}", o.Demo)
	}
	return mux
}

// endpoints maps each API path to its method, for 405 answers.
var endpoints = map[string]string{
	"/api/publish": "POST", "/api/broadcast": "POST", "/api/disconnect": "POST",
	"/api/channels": "GET", "/api/stats": "GET",
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

// publish: raw body with ?channel=, or JSON {"channel":..,"data":..}.
func (h *handlers) publish(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	ch := r.URL.Query().Get("channel")
	data := body
	if ch == "" {
		var req struct {
			Channel string          `json:"channel"`
			Data    json.RawMessage `json:"data"`
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
	}
	p, err := h.b.Publish(ch, data)
	if err != nil {
		writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (h *handlers) broadcast(w http.ResponseWriter, r *http.Request) {
	body, ok := h.readBody(w, r)
	if !ok {
		return
	}
	var req struct {
		Channels []string        `json:"channels"`
		Data     json.RawMessage `json:"data"`
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
	out := make([]Published, 0, len(req.Channels))
	for _, ch := range req.Channels {
		p, err := h.b.Publish(ch, req.Data)
		if err != nil {
			writeBackendError(w, fmt.Errorf("channel %q (after %d published): %w", ch, len(out), err))
			return
		}
		out = append(out, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"published": out})
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

func writeBackendError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.Is(err, ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// writeError writes {"error":{"code":..,"message":..}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
