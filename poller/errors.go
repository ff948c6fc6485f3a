package poller

import "errors"

var (
	// ErrStopped is returned when the server or client has stopped, or
	// has not started.
	ErrStopped = errors.New("poller: stopped")
	// ErrStarted is returned by a second Serve or Start.
	ErrStarted = errors.New("poller: already started")
)
