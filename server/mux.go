package server

import (
	"strings"

	"github.com/herald-push/herald/codec"
)

// Route sends the upgrades whose path starts with Prefix to App.
type Route struct {
	Prefix string
	App    App
}

// MaxRoutes is the most Apps a Mux serves, its fallback included: the
// choice is kept in two bits of each connection's flags, so routing costs
// an idle connection nothing.
const MaxRoutes = 4

// routeShift and routeMask place a connection's route in Conn.flags.
const (
	routeShift       = 6
	routeMask  uint8 = 3 << routeShift
)

// Mux is an App that serves several protocols on one listener: it picks
// an App by the upgrade request's path at Accept (the first Route whose
// Prefix the path starts with, else the fallback) and sends that
// connection's every later callback to it. Each App's Accept still
// decides for itself (the fallback answers 404 for paths it does not
// serve).
type Mux struct {
	apps     [MaxRoutes]App
	prefixes [MaxRoutes]string
	n        int
}

// NewMux returns a Mux serving routes, and fallback for every other path.
// It panics with more than MaxRoutes-1 routes.
func NewMux(fallback App, routes ...Route) *Mux {
	if len(routes) > MaxRoutes-1 {
		panic("server: too many routes for one Mux")
	}
	m := &Mux{n: 1 + len(routes)}
	m.apps[0] = fallback
	for i, r := range routes {
		m.apps[i+1], m.prefixes[i+1] = r.App, r.Prefix
	}
	return m
}

var (
	_ App         = (*Mux)(nil)
	_ WritableApp = (*Mux)(nil)
	_ DrainingApp = (*Mux)(nil)
	_ BudgetApp   = (*Mux)(nil)
	_ StreamApp   = (*Mux)(nil)
)

// app is the App c was routed to.
func (m *Mux) app(c *Conn) App { return m.apps[(c.flags&routeMask)>>routeShift] }

// Attach attaches every App.
func (m *Mux) Attach(s *Server) {
	for _, a := range m.apps[:m.n] {
		a.Attach(s)
	}
}

// Accept picks the connection's App by path and asks it.
func (m *Mux) Accept(c *Conn, req *codec.Request) (string, error) {
	return m.route(c, req).Accept(c, req)
}

// AcceptStream picks the connection's App by path, as Accept does, and
// asks it when it is a StreamApp.
func (m *Mux) AcceptStream(c *Conn, req *codec.Request) (bool, error) {
	if sa, ok := m.route(c, req).(StreamApp); ok {
		return sa.AcceptStream(c, req)
	}
	return false, nil
}

// route records and returns the App of req's path.
func (m *Mux) route(c *Conn, req *codec.Request) App {
	i := 0
	for j := 1; j < m.n; j++ {
		if strings.HasPrefix(req.Path, m.prefixes[j]) {
			i = j
			break
		}
	}
	c.flags = c.flags&^routeMask | uint8(i)<<routeShift
	return m.apps[i]
}

// OnOpen passes the call on to c's App.
func (m *Mux) OnOpen(c *Conn) { m.app(c).OnOpen(c) }

// OnMessage passes the call on to c's App.
func (m *Mux) OnMessage(c *Conn, op codec.OpCode, payload []byte) {
	m.app(c).OnMessage(c, op, payload)
}

// OnClose passes the call on to c's App.
func (m *Mux) OnClose(c *Conn) { m.app(c).OnClose(c) }

// OnWritable passes the call on to c's App when it is a WritableApp.
func (m *Mux) OnWritable(c *Conn) {
	if w, ok := m.app(c).(WritableApp); ok {
		w.OnWritable(c)
	}
}

// OnDrain asks c's App for its close code when it is a DrainingApp.
func (m *Mux) OnDrain(c *Conn) (uint16, string) {
	if d, ok := m.app(c).(DrainingApp); ok {
		return d.OnDrain(c)
	}
	return codec.CloseGoingAway, drainReason
}

// OnBudget asks c's App for its close code when it is a BudgetApp.
func (m *Mux) OnBudget(c *Conn) (uint16, string) {
	if b, ok := m.app(c).(BudgetApp); ok {
		return b.OnBudget(c)
	}
	return codec.ClosePolicyViolation, "output budget exceeded"
}

// BudgetApp is an optional interface of an App: when output the client
// caused (replies, pongs) would pass the output budget, the server closes
// the connection with the code and reason OnBudget returns instead of
// 1008 "output budget exceeded" (a protocol with close codes of its own,
// such as Pusher's 4100 "over capacity"). It runs on the connection's
// loop; the close frame is always let through.
type BudgetApp interface {
	OnBudget(c *Conn) (code uint16, reason string)
}

// DrainingApp is an optional interface of an App: during a graceful
// shutdown the server closes each open connection with the code and
// reason OnDrain returns instead of 1001 (a protocol with close codes of
// its own, such as Pusher's 4200 "reconnect now"). It runs on the
// connection's loop.
type DrainingApp interface {
	OnDrain(c *Conn) (code uint16, reason string)
}
