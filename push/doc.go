// Package push is herald's client protocol (docs/protocol.md) on top of
// the WebSocket transport in package server: authentication at the
// upgrade, the query of the upgrade URL (channel=, since=, token=,
// format=raw), the commands and their replies (sub, unsub, pub, ping,
// msg), subscriptions with recovery and paged backlogs, the per-connection
// limits (subscriptions, command rate), the slow-consumer policies,
// DisconnectUser (a user's sessions on a loop are the hub's subscribers of
// its personal channel there), and the wire form of published messages:
// the JSON envelope, the raw frame and the {"op":"msg"} frame.
//
// Where to start: build a hub.Hub with Encoder as its hub.Config.Encoder,
// New an App with that hub and an auth.Verifier, and hand the App to
// server.New, which attaches it (App.Attach) before serving:
//
//	h := hub.New(hub.Config{Encoder: push.Encoder{MaxFrame: cfg.WriteBufferLimit}})
//	app := push.New(push.Options{Hub: h, Verifier: v})
//	srv, err := server.New(cfg, app, log)
//
// # The way of a message, downhill
//
// hub.Publish sequences a message and has Encoder build its Frames once
// (the envelope and the raw frame, each a server.Frame); each loop with
// subscribers walks them and calls Session.Deliver, which picks the
// envelope or the raw frame and hands it to server.Conn.WriteFrame. The
// transport picks the plain or compressed variant and applies the output
// budget; a frame that does not fit meets the slow-consumer policy here.
// The poller flushes the loop's writes. The protocol reaches the transport
// only through server's exported API, and the transport calls the
// protocol only through the server.App interface.
//
// # Concurrency
//
// The server.App methods (Accept, OnOpen, OnMessage, OnWritable, OnClose)
// run on the connection's event loop; so do Session.Deliver and every
// method of Session other than ID, Subject and Send. A Session, and the
// per-loop tables (channel index, pagers, the upgrade's pending
// subscriptions, the loop's cache of verified tokens), are touched only by
// their loop's goroutine.
// Session.Send, App.Stats and App.DisconnectUser are safe from any
// goroutine. Handlers and Options.Publish run on Options.Workers, in
// per-connection order; replies come back through Loop.Run. The payload
// passed to OnMessage and the strings of the upgrade request are valid
// only during the call: what outlives it (a deferred join, a publish on
// the workers) is copied first, and a session keeps the hub's own copy of
// each channel's name.
package push
