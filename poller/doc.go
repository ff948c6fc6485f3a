// Package poller runs herald's event loops: it accepts TCP connections (or
// dials them, for the load generator), reads them, writes to them, closes
// them and keeps one timer per connection, all on a few goroutines (one per
// loop) instead of one or two per connection.
//
// Two backends run the loops (Config.Backend): "epoll", written on Linux's
// system calls and the default there, and "gnet", on gnet/v2 (kqueue on the
// BSDs and macOS, and selectable on Linux). This is the only package that imports gnet; no
// backend type appears in its API, and both keep the same contract.
//
// Start with Server (or Client), a Handler and Conn:
//
//	srv := poller.NewServer(poller.Config{ReusePort: true, TCPNoDelay: true}, h)
//	go srv.Serve(":8080")
//	<-srv.Ready()
//	...
//	srv.Stop(ctx)
//
// # Concurrency contract
//
// A connection belongs to one Loop for life. Every Handler method for it,
// and every func given to that loop's Run, runs on the loop's goroutine, one
// at a time, so per-connection state needs no locks. Conn methods other
// than ID and Loop, and Loop.Each, may be called only there. Other
// goroutines reach a connection by handing a func to its loop with
// Loop.Run, which queues it and wakes the loop (one wakeup for a burst); a
// goroutine holding a *Conn may use it inside such a func: once closed, a
// Conn's methods are no-ops, so a late func does no harm.
//
// # Writes
//
// Conn.Write queues a slice without copying it. When the entry point that
// queued it (a Handler method, a Run func, a timer tick) returns, each
// connection's queue goes out in one write(2) or writev(2): a loop that
// sends several messages to a connection in one go pays one system call.
// What the kernel does not take then is copied to an outbound buffer and
// sent when the socket is writable; Conn.Buffered reports it, for
// backpressure.
//
// # Timers
//
// Each loop keeps a hashed timing wheel that advances once per
// Config.TickInterval (the epoll backend wakes itself with the timeout of
// epoll_wait; gnet's backend uses one ticker goroutine per Server or
// Client). A connection has one deadline
// (Conn.SetTimer); re-arming it later, as a heartbeat does on every
// message, costs an assignment.
//
// # Memory
//
// With the epoll backend an idle connection costs a Conn (64 bytes), a slot
// in its loop's connection list (8 bytes) and one in each loop's
// fd-indexed table (8 bytes per loop); it owns no goroutine, timer object,
// address or buffer. Inbound bytes are read into one buffer per loop; only
// when a Handler leaves some unconsumed (a partial frame) are they copied
// to a buffer borrowed for the connection, returned once consumed, and
// likewise for outbound bytes the kernel refuses. The gnet backend adds
// gnet's own connection state, about 570 bytes.
package poller
