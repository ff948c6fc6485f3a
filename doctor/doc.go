// Package doctor reads the limits of the machine it runs on and says how many
// WebSocket connections one herald process could hold there, which limit caps
// that number first, and the exact command or configuration line that raises
// each limit.
//
// Start with [Check]: it takes a [Source] (the live machine from [Live], or a
// fake in tests) and [Options] (herald's bytes per connection, the configured
// connection cap) and returns a [Report]. [Report.WriteText] prints it in
// plain words; the Report marshals to JSON as it is.
//
// Limits come in four scopes (see [Scope]): those that cap how many
// connections the process can hold at all (open files, memory, conntrack),
// the one that caps how many connections may have data queued in the kernel
// at once (tcp_mem), those that cap a burst of simultaneous connects (the
// listen backlog), and those that cap the connecting side (the ephemeral port
// range of a load generator or a proxy in front of herald). The capacity
// estimate is the smallest limit of the first scope.
//
// [RaiseNoFile] raises the process's soft open-file limit to its hard limit;
// the server calls it at start.
//
// Nothing in this package keeps state between calls: every function may be
// called from any goroutine, and a Report is a plain value.
package doctor
