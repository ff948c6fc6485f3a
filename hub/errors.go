package hub

import "errors"

// Errors returned by Publish and PublishAt, wrapped with the channel's name;
// test for them with errors.Is.
var (
	// ErrInvalidChannel reports a channel name that ValidChannel refuses.
	ErrInvalidChannel = errors.New("hub: invalid channel name")
	// ErrTooLarge reports a payload over Config.MaxPayload, or one whose
	// frames the Encoder refused as larger than a subscriber's output
	// budget (no subscriber could be sent it).
	ErrTooLarge = errors.New("hub: payload too large")
	// ErrChannelLimit reports a client's subscription or publish to a new
	// channel while clients have created Config.MaxChannels channels: the
	// client may retry later.
	ErrChannelLimit = errors.New("hub: too many channels")
	// ErrStale reports a PublishAt whose offset the channel already has in
	// that epoch: a duplicate from the broker, dropped.
	ErrStale = errors.New("hub: offset already published")
	// ErrBadPosition reports a PublishAt with offset 0 or an empty epoch.
	ErrBadPosition = errors.New("hub: invalid position")
)
